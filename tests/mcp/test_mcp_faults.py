"""MCP servers that misbehave: a crash mid-call, a tool past its timeout, garbage on stdout,
a slow start (the turn does not wait), and reload bringing a failed server back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness import open_client
from tests.mcp.conftest import ENV, mcp_call, stdio_entry, write_mcp_config
from tests.mcp.test_mcp_tools import mcp_items, run_turn, start_thread, wait_status
from tests.support import mock_model as mm


async def test_crash_mid_call_then_reload(transport: str, home: Path, model: Any) -> None:
    write_mcp_config(home, model.base_url, stdio_entry(default_tools_approval_mode="approve"))
    model.add(
        mcp_call("call_1", "local", "crash", {}),
        mm.sse_text("it crashed"),
        mcp_call("call_2", "local", "echo", {"text": "after"}, response_id="r2"),
        mm.sse_text("failed cleanly"),
        mcp_call("call_3", "local", "echo", {"text": "back"}, response_id="r3"),
        mm.sse_text("works again"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await wait_status(c, "local", "ready")
        assert (await run_turn(c, tid, "crash it"))["status"] == "completed"
        crashed = mcp_items(c, "item/completed")[0]
        assert crashed["status"] == "failed"
        assert crashed["error"]["message"].startswith(
            "tool call error: tool call failed for `local/crash`"
        )
        failed = await wait_status(c, "local", "failed")
        assert failed["threadId"] == tid and failed["error"]
        listed = await c.call("mcpServerStatus/list", {"threadId": tid})
        assert listed["data"][0]["runtimeStatus"] == "failed"
        # No automatic restart (as the reference): the next call fails cleanly.
        assert (await run_turn(c, tid, "again"))["status"] == "completed"
        assert mcp_items(c, "item/completed")[1]["status"] == "failed"
        assert await c.call("config/mcpServer/reload") == {}
        await wait_status(c, "local", "ready")
        assert (await run_turn(c, tid, "back"))["status"] == "completed"
        back = mcp_items(c, "item/completed")[2]
        assert back["status"] == "completed"
        assert back["result"]["structuredContent"]["echo"] == "back"


async def test_tool_timeout_cancels_the_call(transport: str, home: Path, model: Any) -> None:
    write_mcp_config(
        home,
        model.base_url,
        stdio_entry(default_tools_approval_mode="approve", tool_timeout_sec=1),
    )
    model.add(
        mcp_call("call_1", "local", "slow", {"seconds": 60}),
        mm.sse_text("too slow"),
        mcp_call("call_2", "local", "add", {"a": 1, "b": 1}, response_id="r2"),
        mm.sse_text("still there"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await wait_status(c, "local", "ready")
        assert (await run_turn(c, tid, "be slow"))["status"] == "completed"
        slow = mcp_items(c, "item/completed")[0]
        assert slow["status"] == "failed" and "timed out" in slow["error"]["message"]
        progress = [m for m in c.seen if m.get("method") == "item/mcpToolCall/progress"]
        assert progress and progress[0]["params"]["message"] == "half way"
        assert progress[0]["params"]["itemId"] == "call_1"
        # The server is still up (the call was cancelled on it, not the server).
        assert (await run_turn(c, tid, "add"))["status"] == "completed"
        assert mcp_items(c, "item/completed")[1]["result"]["structuredContent"] == {"sum": 2}


async def test_garbage_on_stdout_fails_that_server_only(home: Path, model: Any) -> None:
    write_mcp_config(
        home,
        model.base_url,
        stdio_entry(default_tools_approval_mode="approve"),
        stdio_entry("bad", env={"MCP_TEST_GARBAGE": "1"}),
    )
    model.add(mcp_call("call_1", "local", "add", {"a": 3, "b": 4}), mm.sse_text("fine"))
    async with open_client("in_process", home, env=ENV) as c:
        tid = await start_thread(c, home)
        bad = await wait_status(c, "bad", "failed")
        assert "not JSON-RPC" in bad["error"]
        await wait_status(c, "local", "ready")
        assert (await run_turn(c, tid, "add"))["status"] == "completed"
        assert mcp_items(c, "item/completed")[0]["result"]["structuredContent"] == {"sum": 7}
    tools = model.model_requests()[0].body["tools"]
    assert [t["name"] for t in tools if t.get("type") == "namespace"] == ["mcp__local"]


async def test_slow_server_does_not_hold_the_thread_or_turn(home: Path, model: Any) -> None:
    """The turn-start policy: a turn sees only servers already ready; it never waits."""
    write_mcp_config(
        home,
        model.base_url,
        stdio_entry("late", env={"MCP_TEST_DELAY_S": "6"}, default_tools_approval_mode="approve"),
    )
    model.add(mm.sse_text("without it"), mm.sse_text("with it", response_id="r2"))
    async with open_client("in_process", home, env=ENV) as c:
        tid = await start_thread(c, home)
        await wait_status(c, "late", "starting")
        assert (await run_turn(c, tid, "now"))["status"] == "completed"
        statuses = [
            m["params"]["status"]
            for m in c.seen
            if m.get("method") == "mcpServer/startupStatus/updated"
        ]
        assert statuses == ["starting"]  # the turn ended before the server was ready
        listed = await c.call("mcpServerStatus/list", {"threadId": tid})
        assert listed["data"][0]["runtimeStatus"] == "starting"
        await wait_status(c, "late", "ready", timeout=30)
        assert (await run_turn(c, tid, "later"))["status"] == "completed"
    first, second = model.model_requests()[:2]
    assert not [t for t in first.body["tools"] if t.get("type") == "namespace"]
    assert [t["name"] for t in second.body["tools"] if t.get("type") == "namespace"] == [
        "mcp__late"
    ]


async def test_startup_timeout_fails_the_server(home: Path, model: Any) -> None:
    write_mcp_config(
        home,
        model.base_url,
        stdio_entry("late", env={"MCP_TEST_DELAY_S": "30"}, startup_timeout_sec=1),
    )
    async with open_client("in_process", home, env=ENV) as c:
        await start_thread(c, home)
        failed = await wait_status(c, "late", "failed")
        assert "did not start within 1 s" in failed["error"]
