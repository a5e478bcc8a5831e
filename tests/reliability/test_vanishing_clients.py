"""Slow, stalled and vanishing clients against the real CLI.

Covers: a WebSocket client that stops reading is closed with 1008 past the hard mark and,
since it never completes the close handshake, its TCP connection is aborted within a bound
(not left to the keepalive timeout) while other clients go on; a client that disconnects
mid-turn leaves the turn to run to completion, recorded, and a reconnecting client sees it
through ``thread/resume``; a client that disconnects while an approval is pending gets the
approval replayed after ``thread/resume`` and can answer it; a stdio parent that dies (stdin
closed, or the parent killed) makes the server exit within a second, killing the command it
was running, with no process left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest
import websockets

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, run_turn, start_thread
from tests.harness import (
    TIMEOUT,
    StdioWire,
    WireClient,
    is_request,
    server_env,
    spawn_stdio,
    start_ws_server,
    ws_connect,
)
from tests.reliability.test_oversized_input import peak_rss
from tests.support import mock_model as mm

SLOW_CLOSE_CODE = 1008
CLOSE_BOUND_S = 8.0  # the server aborts after 2 s; generous for a loaded machine


def _frame(msg: dict[str, Any]) -> str:
    return orjson.dumps(msg).decode()


async def test_stalled_reader_is_aborted_within_a_bound(home: Path) -> None:
    server = await start_ws_server(home)
    slow = await asyncio.wait_for(
        websockets.connect(server.url, max_queue=1, compression=None), TIMEOUT
    )
    try:
        slow_port = slow.transport.get_extra_info("sockname")[1]
        init = {"clientInfo": {"name": "slow", "version": "1"}}
        await slow.send(_frame({"id": "init", "method": "initialize", "params": init}))
        # More replies than the 65536-message outbound queue holds; the client never reads.
        for i in range(100_000):
            await slow.send(_frame({"id": i, "method": "model/list", "params": {}}))
        await server.wait_stderr("closing slow connection", 120)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await server.wait_stderr("aborting slow connection", CLOSE_BOUND_S)
        await server.wait_stderr("websocket closed", CLOSE_BOUND_S)
        assert loop.time() - started < CLOSE_BOUND_S
        peers = {
            c.raddr.port
            for c in psutil.Process(server.proc.pid).net_connections(kind="tcp")
            if c.raddr
        }
        assert slow_port not in peers
        # Bounded by the outbound hard mark (65536 messages or 64 MiB), whatever the peer does.
        peak = peak_rss(server.proc.pid)
        print(f"\nstalled reader: server peak RSS {peak / 2**20:.1f} MiB", file=sys.stderr)
        assert peak < 160 * 2**20
        fast = await ws_connect(server.url)
        try:
            assert "result" in await fast.initialize()
            assert "data" in await fast.call("model/list", {})
        finally:
            await fast.close()
        assert not any("Traceback" in line for line in server.stderr_lines)
    finally:
        slow.transport.abort()
        await server.stop()


# -- mid-turn disconnects ------------------------------------------------------------------------


async def _resume_until_finished(c: WireClient, tid: str) -> dict[str, Any]:
    """``thread/resume`` and the thread's last turn once it has ended (waiting, bounded, for
    ``turn/completed`` if it is still running)."""
    resumed = await c.call("thread/resume", {"threadId": tid})
    last = resumed["thread"]["turns"][-1]
    if last["status"] == "inProgress":
        done = await c.notification("turn/completed")
        assert done["params"]["turn"]["id"] == last["id"]
        read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
        last = read["thread"]["turns"][-1]
    return dict(last)


async def test_disconnect_mid_stream_turn_completes_and_is_recorded(home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    reply = mm.sse_text("finished without anyone watching", chunks=["finished ", "without ..."])
    # The deltas say one thing, the completed item another: the record holds the latter.
    hold = reply.hold_before(2)  # after the message item started, before its deltas
    model.add(reply)
    server = await start_ws_server(home, env=ENV)
    try:
        a = await ws_connect(server.url)
        await a.initialize()
        tid = await start_thread(a, home)
        await run_turn(a, tid, "stream something")
        assert await asyncio.to_thread(hold.reached.wait, TIMEOUT)
        await a.close()
        hold.release.set()
        b = await ws_connect(server.url)
        try:
            await b.initialize()
            turn = await _resume_until_finished(b, tid)
        finally:
            await b.close()
        assert turn["status"] == "completed"
        assert [i["type"] for i in turn["items"]] == ["userMessage", "agentMessage"]
        assert turn["items"][1]["text"] == "finished without anyone watching"
        assert not any("Traceback" in line for line in server.stderr_lines)
    finally:
        await server.stop()


async def test_disconnect_during_a_running_command_does_not_hang(
    home: Path, model: Any, tmp_path: Path
) -> None:
    write_config(home, model.base_url)
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    command = f"echo started; read line < {fifo}; echo got $line"
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": command}),
        mm.sse_text("the command finished"),
    )
    server = await start_ws_server(home, env=ENV)
    try:
        a = await ws_connect(server.url)
        await a.initialize()
        tid = await start_thread(a, home)
        await run_turn(a, tid, "run it")
        await a.wait_for(lambda m: m.get("method") == "item/commandExecution/outputDelta")
        await a.close()
        await asyncio.wait_for(asyncio.to_thread(fifo.write_text, "go\n"), TIMEOUT)
        b = await ws_connect(server.url)
        try:
            await b.initialize()
            turn = await _resume_until_finished(b, tid)
        finally:
            await b.close()
        assert turn["status"] == "completed"
        cmd = next(i for i in turn["items"] if i["type"] == "commandExecution")
        assert cmd["exitCode"] == 0 and "got go" in cmd["aggregatedOutput"]
        assert turn["items"][-1]["text"] == "the command finished"
    finally:
        await server.stop()


async def test_pending_approval_survives_disconnect_and_is_answerable(
    home: Path, model: Any
) -> None:
    write_config(home, model.base_url, approval="untrusted")
    marker = home / "approved"
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}),
        mm.sse_text("done after approval"),
    )
    server = await start_ws_server(home, env=ENV)
    try:
        a = await ws_connect(server.url)
        await a.initialize()
        tid = await start_thread(a, home)
        await run_turn(a, tid, "needs approval")
        first = await a.wait_for(is_request)
        await a.close()  # gone without answering: the turn waits for a subscriber
        b = await ws_connect(server.url)
        try:
            await b.initialize()
            resumed = await b.call("thread/resume", {"threadId": tid})
            assert resumed["thread"]["turns"][-1]["status"] == "inProgress"
            replayed = await b.wait_for(is_request)
            assert replayed["id"] == first["id"]
            assert replayed["method"] == "item/commandExecution/requestApproval"
            assert replayed["params"] == first["params"]
            assert not marker.exists()
            await b.send({"id": replayed["id"], "result": {"decision": "accept"}})
            assert (await completed_turn(b))["status"] == "completed"
            read = await b.call("thread/read", {"threadId": tid, "includeTurns": True})
        finally:
            await b.close()
        assert marker.exists()
        items = read["thread"]["turns"][-1]["items"]
        assert [i["type"] for i in items] == ["userMessage", "commandExecution", "agentMessage"]
    finally:
        await server.stop()


async def test_stalled_reader_during_a_long_stream_gets_the_exact_text_or_1008(
    home: Path, model: Any
) -> None:
    """A client stops reading while a turn streams ~12 MB of deltas: past the soft mark its
    queued deltas merge, so it either receives the exact text once it reads again, or (past
    the hard mark) is closed with 1008 and finds the finished turn after ``thread/resume``."""
    write_config(home, model.base_url)
    chunks = [f"{i:06d}" + "y" * 4090 + "\n" for i in range(3000)]
    text = "".join(chunks)
    reply = mm.sse_text(text, chunks=chunks)
    hold = reply.hold_before(2)
    model.add(reply)
    server = await start_ws_server(home, env=ENV)
    try:
        slow = await ws_connect(server.url)
        observer = await ws_connect(server.url)
        try:
            await slow.initialize()
            await observer.initialize()
            tid = await start_thread(slow, home)
            await observer.call("thread/resume", {"threadId": tid})
            await run_turn(slow, tid, "stream a lot")
            await slow.notification("turn/started")
            slow.ws.transport.pause_reading()
            assert await asyncio.to_thread(hold.reached.wait, TIMEOUT)
            hold.release.set()
            done = await observer.notification("turn/completed", 60)
            assert done["params"]["turn"]["status"] == "completed"
            slow.ws.transport.resume_reading()
            with contextlib.suppress(TimeoutError):
                await slow.notification("turn/completed", 60)
            if slow.ws.close_code is None:
                got = "".join(
                    m["params"]["delta"]
                    for m in slow.seen
                    if m.get("method") == "item/agentMessage/delta"
                )
                assert got == text
            else:
                assert slow.ws.close_code == SLOW_CLOSE_CODE
                again = await ws_connect(server.url)
                try:
                    await again.initialize()
                    turn = await _resume_until_finished(again, tid)
                finally:
                    await again.close()
                assert turn["items"][-1]["text"] == text
        finally:
            await slow.close()
            await observer.close()
    finally:
        await server.stop()


# -- stdio parent dies ----------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    proc = psutil.Process(pid)
    return [proc, *proc.children(recursive=True)]


async def _gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes of ``procs`` still alive after ``timeout`` seconds (waited, not polled)."""
    _, alive = await asyncio.to_thread(psutil.wait_procs, procs, timeout)
    return list(alive)


@pytest.mark.parametrize("sandbox", ["danger-full-access", "workspace-write"])
async def test_stdin_eof_mid_command_exits_within_a_second_without_orphans(
    home: Path, model: Any, sandbox: str
) -> None:
    write_config(home, model.base_url, sandbox=sandbox)
    command = "sleep 100 & echo started; wait"
    model.add(mm.sse_function_call("call_1", "shell_command", {"command": command}))
    client = StdioWire(await spawn_stdio(home, env=ENV))
    try:
        await client.initialize()
        tid = await start_thread(client, home)
        await run_turn(client, tid, "sleep")
        await client.wait_for(lambda m: m.get("method") == "item/commandExecution/outputDelta")
        command = _tree(client.proc.pid)[1:]
        assert len(command) >= 2, command  # the shell and its background sleep
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        code = await client.wait_closed(timeout=5)
        took = loop.time() - t0
        print(f"\nstdin EOF ({sandbox}): exited in {took:.2f} s", file=sys.stderr)
        assert code == 0
        assert took < 1.0, f"server took {took:.2f} s to exit after stdin EOF"
        assert not await _gone(command, 2)
    finally:
        await client.close()


# A parent that starts the stdio server, runs a turn whose command sleeps, reports the pids and
# then waits to be killed. Only it holds the server's stdin.
PARENT = textwrap.dedent(
    """
    import json, subprocess, sys
    server = subprocess.Popen(
        [sys.executable, "-m", "appserver", "serve", "--stdio", "--home", sys.argv[1]],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )
    def send(msg):
        server.stdin.write(json.dumps(msg).encode() + b"\\n")
        server.stdin.flush()
    def wait(pred):
        for line in server.stdout:
            msg = json.loads(line)
            if pred(msg):
                return msg
        raise SystemExit("server ended")
    send({"id": 1, "method": "initialize", "params": {"clientInfo": {"name": "p", "version": "1"}}})
    wait(lambda m: m.get("id") == 1)
    send({"id": 2, "method": "thread/start", "params": {"cwd": sys.argv[1]}})
    tid = wait(lambda m: m.get("id") == 2)["result"]["thread"]["id"]
    send({"id": 3, "method": "turn/start",
          "params": {"threadId": tid, "input": [{"type": "text", "text": "sleep"}]}})
    wait(lambda m: m.get("method") == "item/commandExecution/outputDelta")
    print(server.pid, flush=True)
    sys.stdin.read()
    """
)


async def test_killed_parent_takes_the_server_and_its_commands_with_it(
    home: Path, model: Any
) -> None:
    write_config(home, model.base_url)
    command = "sleep 100 & echo started; wait"
    model.add(mm.sse_function_call("call_1", "shell_command", {"command": command}))
    parent = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PARENT,
        str(home),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env=server_env(ENV),
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(parent.stdout.readline(), TIMEOUT)
        everything = _tree(int(line))
        assert len(everything) >= 3, everything  # server, shell, background sleep
        parent.send_signal(signal.SIGKILL)
        await parent.wait()
        alive = await _gone(everything, 3)
        assert not alive, [p.pid for p in alive]
    finally:
        if parent.returncode is None:
            parent.kill()
            await parent.wait()
