"""One ``command/exec`` process: spawn, stream, stdin, PTY, timeout, output cap, kill.

Owns the child's lifecycle for the host APIs. The agent's ``shell.run_command`` merges stdout
and stderr and gives the child no stdin and no terminal, which ``command/exec`` needs, so the
spawning is here; the rest is the agent's: ``shell.ExitWatchingProtocol`` (learns of the exit
even while a background job holds the pipes), the process-group registry that
``shell.kill_all_running`` empties at server stop (``track_group``), and ``signal_group``.
The command arrives already wrapped by ``sandbox.wrap_command`` and with a scrubbed
environment: this module never decides what may run.

Every child runs in its own session (so its own process group); with ``tty`` the slave side
of a new pseudo-terminal is its controlling terminal and stdin, stdout and stderr, and
everything it prints arrives as ``stdout``. On timeout the group gets SIGTERM, then SIGKILL
after a grace period, and the exit code is 124 (as the reference, and ``timeout(1)``); a
signal ``N`` gives ``128 + N``. However :meth:`ExecProcess.run` ends (exit, timeout,
:meth:`ExecProcess.terminate`, cancellation), the whole group is SIGKILLed before it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import signal
import struct
import termios
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from appserver.engine.tools import shell

__all__ = ["TIMEOUT_EXIT_CODE", "ExecProcess", "ExecResult", "ExecSpec"]

TIMEOUT_EXIT_CODE = 124
KILL_GRACE_S = 1.0
_READ_SIZE = 64 * 1024
_DRAIN_TIMEOUT_S = 2.0

OnOutput = Callable[[str, bytes, bool], Awaitable[None]]  # (stream, bytes, capReached)


@dataclass(frozen=True)
class ExecSpec:
    argv: list[str]
    cwd: str
    env: dict[str, str]
    tty: bool = False
    stdin: bool = False
    size: tuple[int, int] | None = None  # (rows, cols)
    output_cap: int | None = None  # per stream; None: no cap
    timeout_s: float | None = None


@dataclass
class ExecResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False


@dataclass
class _Stream:
    name: str
    cap: int | None
    on_output: OnOutput | None
    parts: list[bytes] = field(default_factory=list)
    taken: int = 0
    capped: bool = False

    async def feed(self, chunk: bytes) -> None:
        if self.capped:
            return  # keep draining so the child never blocks on a full pipe
        reached = False
        if self.cap is not None and self.taken + len(chunk) > self.cap:
            chunk = chunk[: self.cap - self.taken]
            self.capped = reached = True
        self.taken += len(chunk)
        if self.on_output is not None:
            if chunk or reached:
                await self.on_output(self.name, chunk, reached)
        elif chunk:
            self.parts.append(chunk)

    def text(self) -> bytes:
        return b"".join(self.parts)


def _set_winsize(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _take_terminal(slave: int) -> Callable[[], None]:
    """The child's ``preexec_fn``: a new session (so a new process group) whose controlling
    terminal is the pty's ``slave`` side. Not ``start_new_session``: uvloop runs
    ``preexec_fn`` before its own ``setsid`` and before the standard streams are in place,
    and ``TIOCSCTTY`` needs a session leader; so the descriptor is named directly."""

    def setup() -> None:  # pragma: no cover - runs in the child between fork and exec
        with contextlib.suppress(PermissionError):  # already a session leader
            os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)

    return setup


async def _pump(reader: asyncio.StreamReader, stream: _Stream) -> None:
    while True:
        try:
            chunk = await reader.read(_READ_SIZE)
        except OSError as exc:
            if exc.errno == errno.EIO:  # the pty's slave side is closed: end of output
                return
            raise
        if not chunk:
            return
        await stream.feed(chunk)


class ExecProcess:
    def __init__(self, spec: ExecSpec, on_output: OnOutput | None) -> None:
        self.spec = spec
        self._out = _Stream("stdout", spec.output_cap, on_output)
        self._err = _Stream("stderr", spec.output_cap, on_output)
        self._pgid: int | None = None
        self._master: int | None = None
        self._stdin: Any = None  # a StreamWriter (pipes) or a write transport (pty)
        self._terminated = False
        self._finished = False
        self._started = asyncio.Event()

    # -- control ----------------------------------------------------------------------------
    async def write(self, data: bytes, close: bool) -> None:
        """Write to the child's stdin (and/or close it); ``OSError`` when it is closed."""
        await self._started.wait()
        stdin = self._stdin
        if stdin is None:
            raise BrokenPipeError(errno.EPIPE, "stdin is closed")
        if self.spec.tty:
            await self._write_master(data + (b"\x04" if close else b""))  # Ctrl-D: end of input
            return
        if data:
            stdin.write(data)
            await stdin.drain()
        if close:
            stdin.close()
            self._stdin = None

    def terminate(self) -> None:
        """SIGTERM the group now and SIGKILL it after the grace period (``run`` does)."""
        self._terminated = True
        pgid = self._pgid
        if pgid is not None and not self._finished:
            shell.signal_group(pgid, signal.SIGTERM)
            asyncio.get_running_loop().call_later(KILL_GRACE_S, self._kill_if_running, pgid)

    def _kill_if_running(self, pgid: int) -> None:
        # Only while ``run`` has not reaped the group: its id may be reused afterwards.
        if not self._finished:
            shell.signal_group(pgid, signal.SIGKILL)

    def resize(self, rows: int, cols: int) -> None:
        if self._master is None:
            raise ValueError("not a pty")
        _set_winsize(self._master, rows, cols)

    # -- running ----------------------------------------------------------------------------
    async def run(self) -> ExecResult:
        spec = self.spec
        loop = asyncio.get_running_loop()
        slave: int | None = None
        kwargs: dict[str, Any] = {}
        if spec.tty:
            self._master, slave = os.openpty()
            rows, cols = spec.size or (24, 80)
            _set_winsize(self._master, rows, cols)
            kwargs = {"stdin": slave, "stdout": slave, "stderr": slave}
            kwargs["preexec_fn"] = _take_terminal(slave)
        else:
            stdin = asyncio.subprocess.PIPE if spec.stdin else asyncio.subprocess.DEVNULL
            kwargs = {
                "stdin": stdin,
                "stdout": asyncio.subprocess.PIPE,
                "stderr": asyncio.subprocess.PIPE,
            }
        try:
            transport, protocol = await loop.subprocess_exec(
                lambda: shell.ExitWatchingProtocol(loop),
                *spec.argv,
                cwd=spec.cwd,
                env=spec.env,
                start_new_session=not spec.tty,
                **kwargs,
            )
        except OSError as exc:
            self._close_pty()
            code = 127 if isinstance(exc, FileNotFoundError) else 126
            message = f"failed to start {spec.argv[0]}: {exc.strerror or exc}\n"
            return ExecResult(code, stderr=message.encode())
        finally:
            if slave is not None:
                os.close(slave)
        pgid = self._pgid = transport.get_pid()
        shell.track_group(pgid)
        pumps: list[asyncio.Task[None]] = []
        try:
            if self._master is not None:
                pumps.append(asyncio.create_task(self._pump_pty(loop)))
                self._stdin = self._master  # written by ``_write_master``
            else:
                assert protocol.stdout is not None and protocol.stderr is not None
                pumps.append(asyncio.create_task(_pump(protocol.stdout, self._out)))
                pumps.append(asyncio.create_task(_pump(protocol.stderr, self._err)))
                self._stdin = protocol.stdin
            self._started.set()
            timed_out = not await _wait(protocol.exited, spec.timeout_s)
            if timed_out:
                shell.signal_group(pgid, signal.SIGTERM)
                if not await _wait(protocol.exited, KILL_GRACE_S):
                    shell.signal_group(pgid, signal.SIGKILL)
                    await _wait(protocol.exited, KILL_GRACE_S)
            # The leader is gone; background jobs left in its group must not outlive it.
            shell.signal_group(pgid, signal.SIGKILL)
            await _finish(pumps)
        except BaseException:
            shell.signal_group(pgid, signal.SIGKILL)
            for pump in pumps:
                pump.cancel()
            raise
        finally:
            shell.signal_group(pgid, signal.SIGKILL)
            shell.untrack_group(pgid)
            self._finished = True
            self._stdin = None
            self._started.set()
            self._close_pty()
            transport.close()
        if timed_out:
            code = TIMEOUT_EXIT_CODE
        else:
            rc = transport.get_returncode()
            code = -1 if rc is None else (128 - rc if rc < 0 else rc)
        return ExecResult(code, self._out.text(), self._err.text(), timed_out)

    async def _pump_pty(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._master is not None
        reader = asyncio.StreamReader(limit=_READ_SIZE, loop=loop)
        pipe = os.fdopen(os.dup(self._master), "rb", buffering=0)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader, loop=loop), pipe
        )
        try:
            await _pump(reader, self._out)
        finally:
            transport.close()

    async def _write_master(self, data: bytes) -> None:
        """Write to the terminal's master side directly. Not through a write-pipe transport:
        uvloop's reads the descriptor to notice a closed peer, and would swallow the
        command's output."""
        loop = asyncio.get_running_loop()
        view = memoryview(data)
        while view:
            master = self._master
            if master is None:
                raise BrokenPipeError(errno.EPIPE, "the terminal is closed")
            try:
                view = view[os.write(master, view) :]
            except BlockingIOError:
                ready = loop.create_future()
                loop.add_writer(master, ready.set_result, None)
                try:
                    await ready
                finally:
                    loop.remove_writer(master)

    def _close_pty(self) -> None:
        if self._master is not None:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = None


async def _wait(fut: asyncio.Future[None], timeout_s: float | None) -> bool:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.shield(fut), timeout_s)
    return fut.done()


async def _finish(pumps: list[asyncio.Task[None]]) -> None:
    """Let the readers take what is left in the pipes (bounded: an escaped process may
    hold them open), then stop them."""
    if pumps:
        await asyncio.wait(pumps, timeout=_DRAIN_TIMEOUT_S)
    for pump in pumps:
        if not pump.done():
            pump.cancel()
    for pump in pumps:
        with contextlib.suppress(asyncio.CancelledError), contextlib.suppress(OSError):
            await pump
