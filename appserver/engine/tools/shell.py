"""Running shell commands for a turn: streaming output, timeouts, cancellation, cleanup.

This module owns the child process lifecycle of ``commandExecution`` items: every command
runs in its own process group, its output is streamed as it arrives, and the whole group is
killed on timeout, on cancellation, at server shutdown, and after the command exits (so
background jobs it started do not outlive it). Reading what a command will run is not done
here: :mod:`bash_parse` parses, :mod:`command_safety` judges and :mod:`command_actions`
describes (re-exported here for the item's ``commandActions``).

It must never decide whether a command may run (approval and sandbox policy are the
caller's; wrap ``argv`` with ``sandbox.wrap_command`` first) and must never leave a child
process running after :func:`run_command` returns or raises.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import shutil
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from appserver.engine.tools.command_actions import command_actions

__all__ = [
    "CommandResult",
    "ExitWatchingProtocol",
    "command_actions",
    "kill_all_running",
    "run_command",
    "shell_argv",
    "signal_group",
    "track_group",
    "untrack_group",
]

OutputCallback = Callable[[str], Awaitable[None]]

_READ_SIZE = 64 * 1024
# After the command and its group are gone, how long to keep reading the pipe: a process
# that escaped the group (setsid) may still hold it open, and we must not hang on it.
_DRAIN_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class CommandResult:
    """Outcome of :func:`run_command`.

    ``exit_code``: the exit status; ``128 + N`` when the command died from signal ``N``
    (shell convention); ``None`` when it timed out or was cancelled (we killed it), or could
    not be waited for. ``output`` is stdout and stderr interleaved as read, capped at
    ``max_output_bytes`` (``truncated`` then says so).
    """

    exit_code: int | None
    output: str
    duration_ms: int
    timed_out: bool = False
    cancelled: bool = False
    truncated: bool = False


@dataclass
class _Running:
    killed: bool = False


# pgid -> running command; lets the server kill every child at shutdown.
_RUNNING: dict[int, _Running] = {}


def _signal_group(pgid: int, sig: int) -> None:
    # The group id equals the leader's pid (start_new_session=True). Once the group is empty
    # the call fails harmlessly.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to process group ``pgid``; nothing when it is gone already."""
    _signal_group(pgid, sig)


def track_group(pgid: int) -> None:
    """Have :func:`kill_all_running` kill group ``pgid`` too (commands started elsewhere,
    e.g. a client's ``command/exec``)."""
    _RUNNING.setdefault(pgid, _Running())


def untrack_group(pgid: int) -> None:
    _RUNNING.pop(pgid, None)


def kill_all_running() -> None:
    """SIGKILL the process group of every command still running (server shutdown).

    Synchronous and immediate: there is no grace period at shutdown. The affected
    :func:`run_command` calls return with ``cancelled=True``.
    """
    for pgid, running in list(_RUNNING.items()):
        running.killed = True
        _signal_group(pgid, signal.SIGKILL)


def shell_argv(command: str) -> list[str]:
    """argv running ``command`` through a shell (non-login: login shells print noise)."""
    return ["bash", "-c", command] if shutil.which("bash") else ["sh", "-c", command]


class _Collector:
    """Reads the merged stdout/stderr pipe, decoding UTF-8 incrementally and capping."""

    def __init__(self, limit: int, on_output: OutputCallback | None) -> None:
        self._limit = max(0, limit)
        self._on_output = on_output
        # Incremental so a multi-byte character split across two reads stays intact.
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._taken = 0
        self.truncated = False

    @property
    def text(self) -> str:
        return "".join(self._parts)

    async def _emit(self, text: str) -> None:
        if text:
            self._parts.append(text)
            if self._on_output is not None:
                await self._on_output(text)

    async def pump(self, stream: asyncio.StreamReader) -> None:
        while True:
            chunk = await stream.read(_READ_SIZE)
            if not chunk:
                break
            if self.truncated:
                continue  # keep draining so the child never blocks on a full pipe
            room = self._limit - self._taken
            if len(chunk) > room:
                chunk = chunk[:room]
                self.truncated = True
            self._taken += len(chunk)
            await self._emit(self._decoder.decode(chunk))
        if not self.truncated:
            # Flush a dangling partial character (as U+FFFD) only when not cut by the cap.
            await self._emit(self._decoder.decode(b"", final=True))


def _exit_code(returncode: int | None) -> int | None:
    if returncode is None:
        return None
    return 128 - returncode if returncode < 0 else returncode


class _Protocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Stream protocol that also reports the moment the child exits.

    ``Process.wait()`` on Python 3.11 only returns once the pipes are closed too, so a
    background job holding stdout would make it hang even though the command has exited.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=_READ_SIZE, loop=loop)
        self.exited: asyncio.Future[None] = loop.create_future()

    def process_exited(self) -> None:
        super().process_exited()
        if not self.exited.done():
            self.exited.set_result(None)


# Public name for the host APIs' process runner (appserver/host/process.py).
ExitWatchingProtocol = _Protocol


async def _wait_exit(protocol: _Protocol, timeout_s: float | None) -> bool:
    """Wait (at most ``timeout_s``) for the leader to exit; True if it has."""
    with contextlib.suppress(TimeoutError):
        # shield: a timeout must not cancel the shared future.
        await asyncio.wait_for(asyncio.shield(protocol.exited), timeout_s)
    return protocol.exited.done()


async def _terminate(pgid: int, protocol: _Protocol, grace_s: float) -> None:
    """SIGTERM the group, give the leader ``grace_s`` to exit, then SIGKILL the group."""
    _signal_group(pgid, signal.SIGTERM)
    await _wait_exit(protocol, grace_s)
    # Unconditional: stragglers that ignored SIGTERM (or outlived the leader) die here.
    _signal_group(pgid, signal.SIGKILL)
    await _wait_exit(protocol, grace_s)


async def _finish_pump(pump: asyncio.Task[None]) -> None:
    if not pump.done():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pump), _DRAIN_TIMEOUT_S)
    if not pump.done():
        pump.cancel()
        try:
            await pump
        except asyncio.CancelledError:
            # The pump's own cancellation is expected; a cancellation of *this* task is not
            # ours to swallow.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise


def _start_error(argv: Sequence[str], exc: OSError, started: float) -> CommandResult:
    # Mirror the shell: 127 "not found", 126 "found but cannot run".
    code = 127 if isinstance(exc, FileNotFoundError) else 126
    name = argv[0] if argv else "<empty>"
    message = f"failed to start {name}: {exc.strerror or exc}\n"
    return CommandResult(code, message, int((time.monotonic() - started) * 1000))


async def run_command(
    argv: list[str],
    *,
    cwd: Path,
    timeout_ms: int | None,
    on_output: OutputCallback | None,
    env: dict[str, str] | None = None,
    max_output_bytes: int = 1_000_000,
    kill_grace_s: float = 1.0,
    on_start: Callable[[int], None] | None = None,
) -> CommandResult:
    """Run ``argv`` in ``cwd`` and stream its output to ``on_output``.

    ``env`` replaces the environment when given (``None`` inherits ours). ``timeout_ms``
    ``None`` means no limit. ``on_start`` receives the child's pid (= its process group id).
    A program that cannot be started gives exit code 127/126 and an explanatory output,
    rather than an exception.

    If the awaiting task is cancelled, the process group is terminated and waited for, then
    ``CancelledError`` propagates. If :func:`kill_all_running` kills it, the result has
    ``cancelled=True``. In every case the process group is SIGKILLed before returning, so
    background jobs the command left behind die with it.
    """
    started = time.monotonic()
    if not argv:
        return _start_error(argv, FileNotFoundError("empty command"), started)
    loop = asyncio.get_running_loop()
    try:
        # The protocol-level API (what create_subprocess_exec wraps) so we learn of the exit.
        transport, protocol = await loop.subprocess_exec(
            lambda: _Protocol(loop),
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        return _start_error(argv, exc, started)

    pgid = transport.get_pid()  # start_new_session: the group id is the leader's pid
    running = _Running()
    _RUNNING[pgid] = running
    assert protocol.stdout is not None  # stdout=PIPE
    collector = _Collector(max_output_bytes, on_output)
    pump = asyncio.create_task(collector.pump(protocol.stdout))
    timed_out = False
    try:
        if on_start is not None:
            on_start(pgid)
        deadline = None if timeout_ms is None else started + timeout_ms / 1000
        pending: set[asyncio.Future[None]] = {protocol.exited, pump}
        while not protocol.exited.done():
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            done, pending = await asyncio.wait(
                pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            if not done:
                timed_out = True
                break
            if pump in done and pump.exception() is not None:
                # on_output failed: stop the command, then report the callback's error.
                await _terminate(pgid, protocol, kill_grace_s)
                pump.result()
        if timed_out:
            await _terminate(pgid, protocol, kill_grace_s)
        else:
            # The leader exited; background jobs still in its group must not outlive it.
            _signal_group(pgid, signal.SIGKILL)
        await _finish_pump(pump)
        if pump.done() and not pump.cancelled() and pump.exception() is not None:
            pump.result()
    except asyncio.CancelledError:
        await _terminate(pgid, protocol, kill_grace_s)
        raise
    finally:
        # Also reached if the cleanup above was itself interrupted: never leave the group.
        _signal_group(pgid, signal.SIGKILL)
        _RUNNING.pop(pgid, None)
        if not pump.done():
            pump.cancel()
        # Closes our pipe ends even if an escaped process still holds the other end.
        transport.close()

    cancelled = running.killed and not timed_out
    code = None if (timed_out or cancelled) else _exit_code(transport.get_returncode())
    return CommandResult(
        exit_code=code,
        output=collector.text,
        duration_ms=int((time.monotonic() - started) * 1000),
        timed_out=timed_out,
        cancelled=cancelled,
        truncated=collector.truncated,
    )
