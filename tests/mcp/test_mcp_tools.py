"""MCP tools end to end over every transport: a real stdio MCP server (the SDK's MCPServer)
named in config.toml, the mock model calling its tools, the items and approvals on the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.harness import WireClient, is_request, open_client
from tests.mcp.conftest import ENV, check_elicitation, mcp_call, stdio_entry, write_mcp_config
from tests.support import mock_model as mm

STATUS = "mcpServer/startupStatus/updated"


async def start_thread(c: WireClient, cwd: Path, **params: Any) -> str:
    result = await c.call("thread/start", {"cwd": str(cwd), **params})
    await c.notification("thread/started")
    return str(result["thread"]["id"])


async def wait_status(
    c: WireClient, name: str, status: str, timeout: float = 120
) -> dict[str, Any]:
    """The next ``status`` of server ``name``; a ``failed`` one instead fails the test at once
    with the server's error (unless ``failed`` is what is awaited)."""
    msg = await c.wait_for(
        lambda m: (
            m.get("method") == STATUS
            and m["params"]["name"] == name
            and m["params"]["status"] in (status, "failed")
        ),
        timeout,
    )
    assert msg["params"]["status"] == status, msg["params"]
    return dict(msg["params"])


async def run_turn(c: WireClient, thread_id: str, text: str) -> dict[str, Any]:
    await c.call("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]})
    return dict((await c.notification("turn/completed"))["params"]["turn"])


def mcp_items(c: WireClient, method: str) -> list[dict[str, Any]]:
    return [
        m["params"]["item"]
        for m in c.seen
        if m.get("method") == method and m["params"]["item"]["type"] == "mcpToolCall"
    ]


async def test_tool_call_roundtrip(transport: str, home: Path, model: Any) -> None:
    write_mcp_config(home, model.base_url, stdio_entry(default_tools_approval_mode="approve"))
    model.add(mcp_call("call_1", "local", "add", {"a": 2, "b": 40}), mm.sse_text("It is 42."))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        starting = await wait_status(c, "local", "starting")
        assert starting["threadId"] == tid
        await wait_status(c, "local", "ready")
        turn = await run_turn(c, tid, "add them")
        assert turn["status"] == "completed"
        started = mcp_items(c, "item/started")[0]
        assert started["status"] == "inProgress" and started["id"] == "call_1"
        assert started["server"] == "local" and started["tool"] == "add"
        assert started["arguments"] == {"a": 2, "b": 40}
        done = mcp_items(c, "item/completed")[0]
        assert done["status"] == "completed" and done["error"] is None
        assert done["result"]["structuredContent"] == {"sum": 42}
        assert done["result"]["content"][0]["type"] == "text"
        assert isinstance(done["durationMs"], int)
    first, second = model.model_requests()[:2]
    namespaces = [t for t in first.body["tools"] if t.get("type") == "namespace"]
    assert [n["name"] for n in namespaces] == ["mcp__local"]
    add = next(t for t in namespaces[0]["tools"] if t["name"] == "add")
    assert add["type"] == "function" and add["parameters"]["required"] == ["a", "b"]
    output = next(i for i in second.body["input"] if i.get("type") == "function_call_output")
    assert output["call_id"] == "call_1"
    assert output["output"].startswith("Wall time: ")
    assert json.loads(output["output"].split("Output:\n", 1)[1]) == {"sum": 42}


async def answer(c: WireClient, result: dict[str, Any]) -> dict[str, Any]:
    req = await c.wait_for(is_request)
    assert req["method"] == "mcpServer/elicitation/request", req
    check_elicitation(req["params"])
    await c.send({"id": req["id"], "result": result})
    return dict(req["params"])


async def test_approval_asked_accepted_for_session(transport: str, home: Path, model: Any) -> None:
    write_mcp_config(home, model.base_url, stdio_entry(), approval="on-request")
    model.add(
        mcp_call("call_1", "local", "echo", {"text": "one"}),
        mcp_call("call_2", "local", "echo", {"text": "two"}, response_id="r2"),
        mcp_call("call_3", "local", "peek", {}, response_id="r3"),
        mm.sse_text("done"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await wait_status(c, "local", "ready")
        await c.call("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "go"}]})
        asked = await answer(
            c, {"action": "accept", "content": {}, "_meta": {"persist": "session"}}
        )
        assert asked["serverName"] == "local" and asked["mode"] == "form"
        assert asked["message"] == 'Allow the local MCP server to run tool "echo"?'
        assert asked["requestedSchema"] == {"type": "object", "properties": {}}
        assert asked["_meta"]["codex_approval_kind"] == "mcp_tool_call"
        assert asked["_meta"]["tool_params"] == {"text": "one"}
        turn = (await c.notification("turn/completed"))["params"]["turn"]
        assert turn["status"] == "completed"
        done = mcp_items(c, "item/completed")
        assert [d["status"] for d in done] == ["completed", "completed", "completed"]
        # Asked once: the second echo was accepted for the session, peek is read-only.
        asks = [m for m in c.seen if m.get("method") == "mcpServer/elicitation/request"]
        assert len(asks) == 1
        flags = [
            m["params"]["status"].get("activeFlags")
            for m in c.seen
            if m.get("method") == "thread/status/changed"
        ]
        assert ["waitingOnApproval"] in flags


async def test_approval_declined_and_policy_never(transport: str, home: Path, model: Any) -> None:
    write_mcp_config(home, model.base_url, stdio_entry(), approval="on-request")
    model.add(
        mcp_call("call_1", "local", "echo", {"text": "no"}),
        mm.sse_text("declined"),
        mcp_call("call_2", "local", "echo", {"text": "never"}, response_id="r2"),
        mm.sse_text("refused"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await wait_status(c, "local", "ready")
        await c.call("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "go"}]})
        await answer(c, {"action": "decline"})
        assert (await c.notification("turn/completed"))["params"]["turn"]["status"] == "completed"
        await c.call(
            "turn/start",
            {
                "threadId": tid,
                "input": [{"type": "text", "text": "again"}],
                "approvalPolicy": "never",
            },
        )
        assert (await c.notification("turn/completed"))["params"]["turn"]["status"] == "completed"
        done = mcp_items(c, "item/completed")
        assert [d["status"] for d in done] == ["failed", "failed"]
        assert done[0]["error"]["message"] == "user rejected MCP tool call"
        assert done[1]["error"]["message"] == (
            "MCP tool call requires approval, but approval policy is never"
        )
    outputs = [
        i["output"]
        for r in model.model_requests()
        for i in r.body["input"]
        if i.get("type") == "function_call_output"
    ]
    assert "user rejected MCP tool call" in outputs


async def test_server_elicitation_forwarded(transport: str, home: Path, model: Any) -> None:
    write_mcp_config(home, model.base_url, stdio_entry(default_tools_approval_mode="approve"))
    model.add(mcp_call("call_1", "local", "ask", {}), mm.sse_text("greeted"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await wait_status(c, "local", "ready")
        turn = await c.call(
            "turn/start", {"threadId": tid, "input": [{"type": "text", "text": "ask me"}]}
        )
        asked = await answer(c, {"action": "accept", "content": {"name": "Ada"}})
        assert asked["message"] == "What is your name?" and asked["threadId"] == tid
        assert asked["turnId"] == turn["turn"]["id"]
        assert asked["requestedSchema"]["properties"]["name"]["type"] == "string"
        assert (await c.notification("turn/completed"))["params"]["turn"]["status"] == "completed"
        done = mcp_items(c, "item/completed")[0]
        assert done["result"]["structuredContent"] == {"result": "hello Ada"}


async def test_thread_server_from_config_map(transport: str, home: Path, model: Any) -> None:
    """As codex-acp passes an editor's servers: ``config.mcp_servers.<name>`` on
    thread/start; the server is that thread's only."""
    import sys

    from tests.mcp.conftest import STDIO_SERVER

    write_mcp_config(home, model.base_url)
    model.add(mcp_call("call_1", "mine", "echo", {"text": "hi"}), mm.sse_text("ok"))
    entry = {
        "command": sys.executable,
        "args": [str(STDIO_SERVER)],
        "env": {"MCP_TEST_SECRET": "s3cret"},
        "default_tools_approval_mode": "approve",
        "startup_timeout_sec": 90,
    }
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home, config={"mcp_servers": {"mine": entry}})
        ready = await wait_status(c, "mine", "ready")
        assert ready["threadId"] == tid
        other = await start_thread(c, home)
        listed = await c.call("mcpServerStatus/list", {"threadId": tid})
        assert [s["name"] for s in listed["data"]] == ["mine"]
        mine = listed["data"][0]
        assert mine["runtimeStatus"] == "connected" and mine["authStatus"] == "unsupported"
        assert {"echo", "add", "slow"} <= set(mine["tools"])
        assert mine["tools"]["add"]["inputSchema"]["required"] == ["a", "b"]
        assert (await c.call("mcpServerStatus/list", {"threadId": other}))["data"] == []
        assert (await c.call("mcpServerStatus/list", {}))["data"] == []
        turn = await run_turn(c, tid, "echo")
        assert turn["status"] == "completed"
        done = mcp_items(c, "item/completed")[0]
        assert done["result"]["structuredContent"] == {"echo": "hi", "env": "s3cret"}
        bad = await c.request(
            "thread/start", {"cwd": str(home), "config": {"mcp_servers": {"x": {"args": []}}}}
        )
        assert bad["error"]["code"] == -32600
        assert "config.mcp_servers.x" in bad["error"]["message"]


async def test_elicitation_cancelled_when_the_client_goes(home: Path, model: Any) -> None:
    """A server's elicitation is never left hanging: with no client left watching the
    thread it is cancelled, the tool sees the cancel and the turn goes on."""
    import asyncio

    write_mcp_config(home, model.base_url, stdio_entry(default_tools_approval_mode="approve"))
    model.add(mcp_call("call_1", "local", "ask", {}), mm.sse_text("nobody answered"))
    async with open_client("websocket", home, env=ENV) as c:
        tid = await start_thread(c, home)
        await wait_status(c, "local", "ready")
        await c.call("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "ask"}]})
        req = await c.wait_for(is_request)
        assert req["method"] == "mcpServer/elicitation/request"
        await c.close()
        second = (await asyncio.to_thread(model.wait_for_requests, 2, 30.0))[1]
    output = next(i for i in second.body["input"] if i.get("type") == "function_call_output")
    assert "no name (cancel)" in output["output"]
