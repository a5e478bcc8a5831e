"""``item/tool/requestUserInput`` and ``item/permissions/requestApproval`` end to end, against the
mock model.

Covers: the ``request_user_input`` and ``request_permissions`` tools offered only when the
thread's config switches them on (Codex's keys); a question going to the client with the
thread showing ``waitingOnUserInput`` and the answers going back to the model; a permission
grant cut down to what was asked, widening the sandbox for the turn (undone after it) or the
session; and a client that goes away while a question waits (the model is told, the turn
completes, nothing stays pending).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import ENV, write_config
from tests.harness import WireClient, is_request, open_client, start_ws_server, ws_connect
from tests.support import mock_model as mm

QUESTIONS = {
    "questions": [
        {
            "id": "lang",
            "header": "Language",
            "question": "Which language should the tool use?",
            "options": [
                {"label": "Python (Recommended)", "description": "Matches the codebase."},
                {"label": "Rust", "description": "Faster, more work."},
            ],
        }
    ]
}
ASK_USER = {"tools.experimental_request_user_input.enabled": True}
ASK_PERMISSIONS = {"features.request_permissions_tool": True}


async def start(c: WireClient, cwd: Path, config: dict[str, Any], **extra: Any) -> str:
    result = await c.call("thread/start", {"cwd": str(cwd), "config": config, **extra})
    await c.notification("thread/started")
    return str(result["thread"]["id"])


async def turn(c: WireClient, thread_id: str, text: str = "go") -> None:
    await c.call("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]})


def output_of(model: Any, index: int) -> str:
    body = model.model_requests()[index].body
    outputs = [i for i in body["input"] if i.get("type") == "function_call_output"]
    return str(outputs[-1]["output"])


def tool_names(model: Any, index: int) -> set[str]:
    return {t.get("name") for t in model.model_requests()[index].body.get("tools", [])}


async def test_request_user_input(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(
        mm.sse_text("No questions here."),
        mm.sse_function_call("call_q", "request_user_input", QUESTIONS),
        mm.sse_text("Python it is."),
    )
    async with open_client(transport, home, env=ENV) as c:
        plain = await start(c, home, {})
        await turn(c, plain)
        await c.notification("turn/completed")
        tid = await start(c, home, ASK_USER)
        await turn(c, tid)
        req = await c.wait_for(is_request)
        assert req["method"] == "item/tool/requestUserInput"
        params = req["params"]
        assert params["threadId"] == tid and params["itemId"] == "call_q"
        assert params["isBlocking"] is True
        question = params["questions"][0]
        assert question["id"] == "lang" and question["isOther"] is True
        assert question["options"][0]["label"] == "Python (Recommended)"
        waiting = [
            m["params"]["status"]
            for m in c.seen
            if m.get("method") == "thread/status/changed" and m["params"]["threadId"] == tid
        ]
        assert {"type": "active", "activeFlags": ["waitingOnUserInput"]} in waiting
        answer = {"answers": {"lang": {"answers": ["Python (Recommended)"]}}}
        await c.send({"id": req["id"], "result": answer})
        resolved = await c.notification("serverRequest/resolved")
        assert resolved["params"] == {"threadId": tid, "requestId": req["id"]}
        assert (await c.notification("turn/completed"))["params"]["turn"]["status"] == "completed"
    assert "request_user_input" not in tool_names(model, 0)
    assert "request_user_input" in tool_names(model, 1)
    assert json.loads(output_of(model, 2)) == answer


async def test_request_permissions(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    extra, other = home / "extra", home / "other"
    asked = {
        "reason": "write the build output",
        "permissions": {
            "network": {"enabled": True},
            "file_system": {"write": [str(extra), str(other)]},
        },
    }
    model.add(
        mm.sse_function_call("call_p1", "request_permissions", asked),
        mm.sse_text("Built for this turn."),
        mm.sse_function_call("call_p2", "request_permissions", asked),
        mm.sse_text("Built for the session."),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start(c, home, ASK_PERMISSIONS, sandbox="workspace-write")
        before = (await c.call("thread/resume", {"threadId": tid}))["sandbox"]
        await turn(c, tid)
        req = await c.wait_for(is_request)
        assert req["method"] == "item/permissions/requestApproval"
        assert req["params"]["permissions"] == {
            "network": {"enabled": True},
            "fileSystem": {"read": None, "write": [str(extra), str(other)]},
        }
        assert req["params"]["cwd"] == str(home)
        assert req["params"]["reason"] == "write the build output"
        # The client grants one path, and one it was not asked about (ignored).
        grant = {"fileSystem": {"write": [str(extra), "/etc"]}}
        await c.send({"id": req["id"], "result": {"permissions": grant, "scope": "turn"}})
        await c.notification("turn/completed")
        after_turn = (await c.call("thread/resume", {"threadId": tid}))["sandbox"]
        assert after_turn == before
        await turn(c, tid)
        req = await c.wait_for(is_request)
        session = {"permissions": {"network": {"enabled": True}}, "scope": "session"}
        await c.send({"id": req["id"], "result": session})
        await c.notification("turn/completed")
        after_session = (await c.call("thread/resume", {"threadId": tid}))["sandbox"]
        assert after_session == {**before, "networkAccess": True}
    assert json.loads(output_of(model, 1)) == {
        "permissions": {"fileSystem": {"write": [str(extra)]}},
        "scope": "turn",
    }
    assert json.loads(output_of(model, 3)) == {
        "permissions": {"network": {"enabled": True}},
        "scope": "session",
    }


@pytest.mark.parametrize("transport", ["websocket"])
async def test_question_fails_when_the_client_goes(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_function_call("call_q", "request_user_input", QUESTIONS), mm.sse_text("ok"))
    server = await start_ws_server(home, env=ENV)
    try:
        c = await ws_connect(server.url)
        await c.initialize()
        tid = await start(c, home, ASK_USER)
        await turn(c, tid)
        assert (await c.wait_for(is_request))["method"] == "item/tool/requestUserInput"
        await c.close()
        model.wait_for_requests(2)
        c = await ws_connect(server.url)
        await c.initialize()
        await c.call("thread/resume", {"threadId": tid})
        read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
        while read["thread"]["turns"][-1]["status"] == "inProgress":
            await c.notification("turn/completed")
            read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
        assert read["thread"]["turns"][-1]["status"] == "completed"
        await c.call("thread/loaded/list")
        assert not [m for m in c.seen if is_request(m)]
        await c.close()
    finally:
        await server.stop()
    assert output_of(model, 1) == "request_user_input was cancelled before receiving a response"
