"""Behaviours of a thread shared or left behind: two WebSocket clients on one thread (both
see the stream, the first approval answer wins), interrupting a running command, and forking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, next_request, run_turn, start_thread
from tests.harness import is_request, open_client, start_ws_server, ws_connect
from tests.support import mock_model as mm


async def test_two_clients_share_a_thread_and_first_answer_wins(home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="untrusted")
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {home / 'm'}"}),
        mm.sse_text("done"),
    )
    server = await start_ws_server(home, env=ENV)
    a = await ws_connect(server.url)
    b = await ws_connect(server.url)
    try:
        await a.initialize()
        await b.initialize()
        tid = await start_thread(a, home)
        resumed = await b.call("thread/resume", {"threadId": tid})
        assert resumed["thread"]["id"] == tid
        await run_turn(a, tid, "go")
        req_a = await next_request(a)
        req_b = await next_request(b)
        assert req_a["id"] == req_b["id"]
        await b.send({"id": req_b["id"], "result": {"decision": "accept"}})
        await a.send({"id": req_a["id"], "result": {"decision": "decline"}})  # too late
        for c in (a, b):
            assert (await completed_turn(c))["status"] == "completed"
            resolved = [m for m in c.seen if m.get("method") == "serverRequest/resolved"]
            assert len(resolved) == 1
        cmd = [
            m["params"]["item"]
            for m in a.seen
            if m.get("method") == "item/completed"
            and m["params"]["item"]["type"] == "commandExecution"
        ]
        assert cmd[0]["status"] == "completed"
    finally:
        await a.close()
        await b.close()
        await server.stop()


async def test_interrupt_a_running_command(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": "echo started; sleep 60"})
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        turn_id = await run_turn(c, tid, "long")
        await c.wait_for(lambda m: m.get("method") == "item/commandExecution/outputDelta")
        reply = await c.request("turn/interrupt", {"threadId": tid, "turnId": turn_id})
        assert reply["result"] == {}
        assert (await completed_turn(c))["status"] == "interrupted"
        assert not [m for m in c.seen if is_request(m)]


async def test_fork_copies_history(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("original"), mm.sse_text("forked"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "first")
        await completed_turn(c)
        fork = await c.call("thread/fork", {"threadId": tid})
        new_id = fork["thread"]["id"]
        assert new_id != tid and fork["thread"]["forkedFromId"] == tid
        assert [t["status"] for t in fork["thread"]["turns"]] == ["completed"]
        await run_turn(c, new_id, "second")
        assert (await completed_turn(c))["status"] == "completed"
    roles = [i.get("role") for i in model.requests[-1].body["input"] if i["type"] == "message"]
    assert roles == ["user", "assistant", "user"]
