"""Client-provided tools (``thread/start.dynamicTools``) end to end, against the mock model.

Covers: the tools offered to the model (a namespace as the stock TUI sends its ``codex_tui``
one, and a plain function), a call becoming the ``item/tool/call`` server request and its
answer going back to the model with the ``dynamicToolCall`` item, an error answer, the
experimentalApi gate and bad specs, the tools kept across a restart, and a client that goes
away mid-call (the call fails, the turn goes on).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import ENV, write_config
from tests.harness import WireClient, is_request, open_client
from tests.support import mock_model as mm

EXPERIMENTAL = {"experimentalApi": True}

TUI_TOOLS: list[dict[str, Any]] = [
    {
        "type": "namespace",
        "name": "codex_tui",
        "description": "Manage Codex tasks available through the connected app server.",
        "tools": [
            {
                "type": "function",
                "name": "list_threads",
                "description": "List recent active Codex tasks.",
                "inputSchema": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"limit": {"type": "integer", "minimum": 1}},
                    "required": [],
                },
                "deferLoading": True,
            }
        ],
    },
    {
        "type": "function",
        "name": "lookup_order",
        "description": "Look up an order.",
        "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}},
    },
]


def namespaced_call(call_id: str, namespace: str, name: str, args: dict[str, Any]) -> mm.Reply:
    item = {
        "type": "function_call",
        "call_id": call_id,
        "namespace": namespace,
        "name": name,
        "arguments": json.dumps(args),
    }
    return mm.sse_response([{"type": "response.output_item.done", "item": item}])


async def start(c: WireClient, cwd: Path, tools: list[dict[str, Any]] = TUI_TOOLS) -> str:
    result = await c.call("thread/start", {"cwd": str(cwd), "dynamicTools": tools})
    await c.notification("thread/started")
    return str(result["thread"]["id"])


async def turn(c: WireClient, thread_id: str, text: str) -> None:
    await c.call("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]})


def outputs(model: Any, index: int) -> list[dict[str, Any]]:
    body = model.model_requests()[index].body
    return [i for i in body["input"] if i.get("type") == "function_call_output"]


async def test_call_goes_to_the_client_and_back(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(
        namespaced_call("call_1", "codex_tui", "list_threads", {"limit": 2}),
        mm.sse_text("Two tasks."),
    )
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        tid = await start(c, home)
        await turn(c, tid, "What runs?")
        started = await c.wait_for(
            lambda m: (
                m.get("method") == "item/started"
                and m["params"]["item"]["type"] == "dynamicToolCall"
            )
        )
        assert started["params"]["item"]["status"] == "inProgress"
        req = await c.wait_for(is_request)
        assert req["method"] == "item/tool/call"
        assert req["params"] == {
            "threadId": tid,
            "turnId": started["params"]["turnId"],
            "callId": "call_1",
            "namespace": "codex_tui",
            "tool": "list_threads",
            "arguments": {"limit": 2},
        }
        answer = {"contentItems": [{"type": "inputText", "text": "t1, t2"}], "success": True}
        await c.send({"id": req["id"], "result": answer})
        done = await c.wait_for(
            lambda m: (
                m.get("method") == "item/completed"
                and m["params"]["item"]["type"] == "dynamicToolCall"
            )
        )
        item = done["params"]["item"]
        assert item["status"] == "completed" and item["success"] is True
        assert item["contentItems"] == answer["contentItems"]
        assert isinstance(item["durationMs"], int)
        turn_done = (await c.notification("turn/completed"))["params"]["turn"]
        assert turn_done["status"] == "completed"
        read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
        kinds = [i["type"] for i in read["thread"]["turns"][0]["items"]]
        assert "dynamicToolCall" in kinds
    tools = model.model_requests()[0].body["tools"]
    namespace = next(t for t in tools if t.get("type") == "namespace")
    assert namespace["name"] == "codex_tui"
    assert [t["name"] for t in namespace["tools"]] == ["list_threads"]
    assert any(t.get("name") == "lookup_order" for t in tools)
    assert outputs(model, 1) == [
        {"type": "function_call_output", "call_id": "call_1", "output": "t1, t2"}
    ]


async def test_error_answer_fails_the_call(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_function_call("call_2", "lookup_order", {"id": "7"}), mm.sse_text("Sorry."))
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        tid = await start(c, home)
        await turn(c, tid, "Find order 7")
        req = await c.wait_for(is_request)
        assert req["method"] == "item/tool/call" and req["params"]["namespace"] is None
        await c.send({"id": req["id"], "error": {"code": -32000, "message": "no such order"}})
        done = await c.wait_for(
            lambda m: (
                m.get("method") == "item/completed"
                and m["params"]["item"]["type"] == "dynamicToolCall"
            )
        )
        assert done["params"]["item"]["status"] == "failed"
        assert done["params"]["item"]["success"] is False
        assert (await c.notification("turn/completed"))["params"]["turn"]["status"] == "completed"
    assert outputs(model, 1)[0]["output"] == "dynamic tool request failed"


async def test_gate_and_bad_specs(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    async with open_client(transport, home, env=ENV) as c:
        reply = await c.request("thread/start", {"dynamicTools": TUI_TOOLS})
        assert reply["error"]["code"] == -32600
        assert reply["error"]["message"] == (
            "thread/start.dynamicTools requires experimentalApi capability"
        )
        # An empty list (the TUI's title threads send one) is no experimental use.
        assert "result" in await c.request("thread/start", {"dynamicTools": []})
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        bad: list[Any] = [
            [{"type": "function", "name": "x y", "description": "", "inputSchema": {}}],
            [{"type": "function", "name": "shell_command", "description": "", "inputSchema": {}}],
            [{"type": "function", "name": "a", "description": ""}],
            [TUI_TOOLS[1], TUI_TOOLS[1]],
        ]
        for specs in bad:
            reply = await c.request("thread/start", {"dynamicTools": specs})
            assert reply["error"]["code"] == -32600, specs
            assert "dynamicTools" in reply["error"]["message"]


async def test_tools_survive_a_restart(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("First."), mm.sse_text("Second."))
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        tid = await start(c, home)
        await turn(c, tid, "one")
        await c.notification("turn/completed")
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        await c.call("thread/resume", {"threadId": tid})
        await turn(c, tid, "two")
        await c.notification("turn/completed")
    first, second = (r.body["tools"] for r in model.model_requests())
    assert first == second
    assert any(t.get("name") == "codex_tui" for t in second)


@pytest.mark.parametrize("transport", ["websocket"])
async def test_client_gone_mid_call_fails_it(transport: str, home: Path, model: Any) -> None:
    """The server outlives the client here (WebSocket): the call fails at once, the model is
    told, and the turn completes; the item reads back failed."""
    write_config(home, model.base_url)
    model.add(mm.sse_function_call("call_3", "lookup_order", {}), mm.sse_text("Gave up."))
    from tests.harness import start_ws_server, ws_connect

    server = await start_ws_server(home, env=ENV)
    try:
        c = await ws_connect(server.url)
        await c.initialize(**EXPERIMENTAL)
        tid = await start(c, home)
        await turn(c, tid, "Find it")
        req = await c.wait_for(is_request)
        assert req["method"] == "item/tool/call"
        await c.close()
        model.wait_for_requests(2)
        c = await ws_connect(server.url)
        await c.initialize(**EXPERIMENTAL)
        resumed = await c.call("thread/resume", {"threadId": tid})
        turns = resumed["thread"]["turns"]
        while turns[-1]["status"] == "inProgress":
            await c.notification("turn/completed")
            turns = (await c.call("thread/read", {"threadId": tid, "includeTurns": True}))[
                "thread"
            ]["turns"]
        calls = [i for i in turns[-1]["items"] if i["type"] == "dynamicToolCall"]
        assert calls[0]["status"] == "failed" and calls[0]["success"] is False
        # Nothing is left waiting for the client that went away.
        await c.call("thread/loaded/list")
        assert not [m for m in c.seen if m.get("method") == "item/tool/call"]
        await c.close()
    finally:
        await server.stop()
    cancelled = "dynamic tool call was cancelled before receiving a response"
    assert outputs(model, 1)[0]["output"] == cancelled


async def test_fork_keeps_the_tools_not_the_goal(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("First."), mm.sse_text("Forked."))
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        tid = await start(c, home)
        await turn(c, tid, "one")
        await c.notification("turn/completed")
        goal = {"threadId": tid, "objective": "Ship", "status": "paused"}
        await c.call("thread/goal/set", goal)
        fork = (await c.call("thread/fork", {"threadId": tid}))["thread"]["id"]
        assert await c.call("thread/goal/get", {"threadId": fork}) == {"goal": None}
        await turn(c, fork, "two")
        await c.notification("turn/completed")
    first, forked = (r.body["tools"] for r in model.model_requests())
    assert first == forked
    assert any(t.get("name") == "codex_tui" for t in forked)
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        assert await c.call("thread/goal/get", {"threadId": fork}) == {"goal": None}
        assert (await c.call("thread/goal/get", {"threadId": tid}))["goal"]["objective"] == "Ship"
