"""MCP tools end to end over every transport: a real stdio MCP server (the SDK's MCPServer)
named in config.toml, the mock model calling its tools, the items and approvals on the wire."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.harness import WireClient, is_request, open_client
from tests.mcp.conftest import ENV, mcp_call, stdio_entry, write_mcp_config
from tests.support import mock_model as mm

STATUS = "mcpServer/startupStatus/updated"


async def start_thread(c: WireClient, cwd: Path, **params: Any) -> str:
    result = await c.call("thread/start", {"cwd": str(cwd), **params})
    await c.notification("thread/started")
    return str(result["thread"]["id"])


async def wait_status(c: WireClient, name: str, status: str, timeout: float = 30) -> dict[str, Any]:
    msg = await c.wait_for(
        lambda m: m.get("method") == STATUS
        and m["params"]["name"] == name
        and m["params"]["status"] == status,
        timeout,
    )
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
    write_mcp_config(
        home, model.base_url, stdio_entry(default_tools_approval_mode="approve")
    )
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
