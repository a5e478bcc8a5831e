"""A restart while a turn waits on an approval (known-failures #16), against the real CLI.

Covers: the server is killed (SIGKILL) while a command waits for approval; after a restart,
``thread/resume`` shows the turn still in progress and asks for the same approval again (same
item, same command); nothing ran meanwhile; accepting it runs the command and the turn goes on
to completion under its own id, recorded once; answering nothing and interrupting instead
ends the turn ``interrupted``, the command never runs, and a new turn works.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import run_turn, start_thread
from tests.harness import TIMEOUT, WebSocketWire, WsServer, is_request, start_ws_server, ws_connect
from tests.support import mock_model as mm

APPROVAL = "item/commandExecution/requestApproval"


async def _killed_while_waiting(home: Path, model: Any, marker: Path) -> tuple[str, str, Any]:
    """A turn asking to run ``touch marker``, its server killed before anyone answers."""
    write_config(home, model.base_url, approval="untrusted")
    model.add(mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}))
    server = await start_ws_server(home, env=ENV)
    try:
        a = await ws_connect(server.url)
        assert "result" in await a.initialize()
        tid = await start_thread(a, home)
        turn_id = await run_turn(a, tid, "needs approval")
        asked = await a.wait_for(is_request)
        assert asked["method"] == APPROVAL
        server.proc.kill()
        await asyncio.wait_for(server.proc.wait(), TIMEOUT)
        await a.close()
    finally:
        await server.stop()
    return tid, turn_id, asked


async def _reconnect(home: Path) -> tuple[WsServer, WebSocketWire]:
    server = await start_ws_server(home, env=ENV)
    b = await ws_connect(server.url)
    assert "result" in await b.initialize()
    return server, b


async def test_a_pending_approval_is_asked_again_after_a_restart(home: Path, model: Any) -> None:
    marker = home / "approved"
    tid, turn_id, asked = await _killed_while_waiting(home, model, marker)
    model.add(mm.sse_text("ran it after the restart"))
    server, b = await _reconnect(home)
    try:
        resumed = await b.call("thread/resume", {"threadId": tid})
        last = resumed["thread"]["turns"][-1]
        assert last["id"] == turn_id and last["status"] == "inProgress"
        again = await b.wait_for(is_request)
        assert again["method"] == APPROVAL
        for key in ("itemId", "turnId", "threadId", "command", "cwd"):
            assert again["params"][key] == asked["params"][key], key
        assert not marker.exists()
        await b.send({"id": again["id"], "result": {"decision": "accept"}})
        done = await b.notification("turn/completed")
        assert done["params"]["turn"]["id"] == turn_id
        assert done["params"]["turn"]["status"] == "completed"
        assert marker.exists()
        read = await b.call("thread/read", {"threadId": tid, "includeTurns": True})
        turns = read["thread"]["turns"]
        assert [t["id"] for t in turns] == [turn_id]
        items = turns[0]["items"]
        assert [i["type"] for i in items] == ["userMessage", "commandExecution", "agentMessage"]
        assert items[-1]["text"] == "ran it after the restart"
        # The model saw the command's output after the restart, once.
        outputs = [
            i
            for i in model.model_requests()[-1].body["input"]
            if i.get("type") == "function_call_output"
        ]
        assert [o["call_id"] for o in outputs] == ["call_1"]
        await b.close()
        assert not any("Traceback" in line for line in server.stderr_lines)
    finally:
        await server.stop()


async def test_a_pending_approval_can_be_interrupted_after_a_restart(
    home: Path, model: Any
) -> None:
    marker = home / "approved"
    tid, turn_id, _ = await _killed_while_waiting(home, model, marker)
    server, b = await _reconnect(home)
    try:
        await b.call("thread/resume", {"threadId": tid})
        await b.wait_for(is_request)
        await b.call("turn/interrupt", {"threadId": tid, "turnId": turn_id})
        done = await b.notification("turn/completed")
        assert done["params"]["turn"]["status"] == "interrupted"
        assert not marker.exists()
        model.add(mm.sse_text("a new turn"))
        await run_turn(b, tid, "something else")
        assert (await b.notification("turn/completed"))["params"]["turn"]["status"] == "completed"
        read = await b.call("thread/read", {"threadId": tid, "includeTurns": True})
        assert [t["status"] for t in read["thread"]["turns"]] == ["interrupted", "completed"]
        await b.close()
    finally:
        await server.stop()
