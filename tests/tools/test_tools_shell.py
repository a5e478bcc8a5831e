"""Tests for running commands (streaming, timeouts, cancellation); the analysis of what a
command runs is tested in ``tests/security``."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from appserver.engine.tools import shell
from appserver.engine.tools.sandbox import bwrap_available, wrap_command
from appserver.engine.tools.shell import (
    CommandResult,
    kill_all_running,
    run_command,
    shell_argv,
)

WAIT = 20.0  # upper bound for every wait; tests normally finish in milliseconds


class Output:
    """An on_output callback that records chunks and lets tests wait for text."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self._changed = asyncio.Condition()

    async def __call__(self, chunk: str) -> None:
        async with self._changed:
            self.chunks.append(chunk)
            self._changed.notify_all()

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    async def wait_for(self, predicate: Callable[[str], bool]) -> str:
        async def waiter() -> str:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self.text))
                return self.text

        return await asyncio.wait_for(waiter(), WAIT)


@pytest.fixture
async def gate(tmp_path: Path) -> AsyncIterator[tuple[Path, Callable[[], None]]]:
    """A FIFO a command can block on (``read x < fifo``) until the test calls ``release``."""
    fifo = tmp_path / "gate"
    os.mkfifo(fifo)
    # O_RDWR never blocks on a FIFO, and holding it keeps the written line available until
    # the command opens the FIFO for reading.
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)

    def release() -> None:
        os.write(fd, b"go\n")

    yield fifo, release
    os.close(fd)


async def run(cmd: str, cwd: Path, **kwargs: Any) -> CommandResult:
    kwargs.setdefault("timeout_ms", None)
    kwargs.setdefault("on_output", None)
    return await asyncio.wait_for(run_command(shell_argv(cmd), cwd=cwd, **kwargs), WAIT)


def gone(pids: list[int]) -> bool:
    """Whether every pid has exited, waiting at most WAIT seconds.

    Killed grandchildren become zombies until init reaps them, which can take a while in a
    container; a zombie has already exited, so it counts as gone.
    """
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    deadline = time.monotonic() + WAIT
    while True:
        procs = [p for p in procs if not _is_dead(p)]
        if not procs or time.monotonic() > deadline:
            return not procs
        psutil.wait_procs(procs, timeout=0.05)


def _is_dead(p: psutil.Process) -> bool:
    try:
        return bool(p.status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_shell_argv() -> None:
    argv = shell_argv("echo hi")
    assert argv[1:] == ["-c", "echo hi"]
    assert argv[0] in ("bash", "sh")


async def test_output_order_and_exit_code(tmp_path: Path) -> None:
    out = Output()
    res = await run(
        "printf 'a\\n'; printf 'b\\n' >&2; printf 'c\\n'; exit 3", tmp_path, on_output=out
    )
    assert res.exit_code == 3
    assert res.output == "a\nb\nc\n" == out.text
    assert not res.timed_out and not res.cancelled and not res.truncated
    assert res.duration_ms >= 0


async def test_streams_before_exit(tmp_path: Path, gate: tuple[Path, Callable[[], None]]) -> None:
    fifo, release = gate
    out = Output()
    task = asyncio.create_task(
        run(f"echo first; read x < {fifo}; echo second", tmp_path, on_output=out)
    )
    assert await out.wait_for(lambda t: "first" in t) == "first\n"
    assert not task.done()
    release()
    res = await asyncio.wait_for(task, WAIT)
    assert res.output == "first\nsecond\n" and res.exit_code == 0


async def test_multibyte_split_across_reads(
    tmp_path: Path, gate: tuple[Path, Callable[[], None]]
) -> None:
    fifo, release = gate
    out = Output()
    # "é" is \303\251; the first byte arrives in one read, the second in a later one.
    task = asyncio.create_task(
        run(f"printf 'x\\303'; read y < {fifo}; printf '\\251!'", tmp_path, on_output=out)
    )
    await out.wait_for(lambda t: t == "x")
    release()
    res = await asyncio.wait_for(task, WAIT)
    assert res.output == "xé!"
    assert out.chunks == ["x", "é!"]


async def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    res = await run("printf 'a\\377b'", tmp_path)
    assert res.output == "a\ufffdb"


async def test_exit_by_signal_uses_shell_convention(tmp_path: Path) -> None:
    res = await run("kill -TERM $$", tmp_path)
    assert res.exit_code == 128 + 15


async def test_cannot_start(tmp_path: Path) -> None:
    res = await asyncio.wait_for(
        run_command(["/nonexistent/prog"], cwd=tmp_path, timeout_ms=None, on_output=None), WAIT
    )
    assert res.exit_code == 127 and "failed to start" in res.output


async def test_env_and_cwd(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "FOO": "bar"}
    res = await run('echo "$FOO"; pwd', tmp_path, env=env)
    assert res.output == f"bar\n{tmp_path}\n"


async def test_output_cap(tmp_path: Path) -> None:
    out = Output()
    res = await run(
        "head -c 300000 /dev/zero | tr '\\0' a; echo done >&2",
        tmp_path,
        on_output=out,
        max_output_bytes=100,
    )
    assert res.output == "a" * 100 and out.text == res.output
    assert res.truncated and res.exit_code == 0


async def test_timeout_kills_group(tmp_path: Path) -> None:
    out = Output()
    pids: list[int] = []
    res = await run(
        "echo started; sleep 100 & echo $!; sleep 100",
        tmp_path,
        timeout_ms=300,
        on_output=out,
        on_start=pids.append,
    )
    assert res.timed_out and res.exit_code is None and not res.cancelled
    assert res.output.startswith("started\n")
    assert res.duration_ms < WAIT * 1000
    bg = int(res.output.split()[1])
    assert gone([*pids, bg])


async def test_timeout_escalates_to_sigkill(tmp_path: Path) -> None:
    out = Output()
    pids: list[int] = []
    task = asyncio.create_task(
        run(
            "trap '' TERM; echo ready; while :; do :; done",
            tmp_path,
            timeout_ms=500,
            on_output=out,
            kill_grace_s=0.2,
            on_start=pids.append,
        )
    )
    res = await asyncio.wait_for(task, WAIT)
    assert res.timed_out and res.output == "ready\n"
    assert gone(pids)


async def test_cancel_kills_process_tree(tmp_path: Path) -> None:
    out = Output()
    leader: list[int] = []
    task = asyncio.create_task(
        run(
            "echo $$; sleep 100 & echo $!; sleep 100",
            tmp_path,
            on_output=out,
            on_start=leader.append,
        )
    )
    text = await out.wait_for(lambda t: len(t.split()) >= 2)
    sh_pid, bg_pid = (int(x) for x in text.split()[:2])
    assert leader == [sh_pid]
    tree = [sh_pid, *(c.pid for c in psutil.Process(sh_pid).children(recursive=True))]
    # bash may exec the final `sleep` in place of itself, so the leader can be that sleep.
    assert bg_pid in tree
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, WAIT)
    assert gone(tree)
    assert sh_pid not in shell._RUNNING


async def test_background_jobs_die_when_command_exits(tmp_path: Path) -> None:
    res = await run("sleep 100 & echo $!", tmp_path)
    assert res.exit_code == 0
    assert gone([int(res.output)])


async def test_kill_all_running(tmp_path: Path) -> None:
    started = asyncio.Event()
    task = asyncio.create_task(run("sleep 100", tmp_path, on_start=lambda _pid: started.set()))
    await asyncio.wait_for(started.wait(), WAIT)
    kill_all_running()
    res = await asyncio.wait_for(task, WAIT)
    assert res.cancelled and res.exit_code is None and not res.timed_out


async def test_failing_callback_kills_and_propagates(tmp_path: Path) -> None:
    pids: list[int] = []

    async def boom(_chunk: str) -> None:
        raise RuntimeError("client gone")

    with pytest.raises(RuntimeError, match="client gone"):
        await run("echo hi; sleep 100", tmp_path, on_output=boom, on_start=pids.append)
    assert gone(pids)


@pytest.mark.skipif(not bwrap_available(), reason="bubblewrap (bwrap) not usable here")
async def test_cancel_kills_sandboxed_tree(tmp_path: Path) -> None:
    argv = wrap_command(
        shell_argv("sleep 100 & echo ready; sleep 100"), {"type": "readOnly"}, tmp_path
    )
    assert argv is not None
    out = Output()
    leader: list[int] = []
    task = asyncio.create_task(
        asyncio.wait_for(
            run_command(argv, cwd=tmp_path, timeout_ms=None, on_output=out, on_start=leader.append),
            WAIT,
        )
    )
    await out.wait_for(lambda t: "ready" in t)
    (bwrap_pid,) = leader
    tree = [bwrap_pid, *(c.pid for c in psutil.Process(bwrap_pid).children(recursive=True))]
    assert len(tree) >= 3  # bwrap, its pid-namespace init, and the command below it
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert gone(tree)
