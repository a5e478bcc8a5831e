"""The MCP methods over every transport: mcpServerStatus/list (paging, detail, serverName,
threadId), mcpServer/tool/call, mcpServer/resource/read, config/mcpServer/reload; a
streamable-HTTP server that checks a bearer header; bad config entries as configWarning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.harness import open_client
from tests.mcp.conftest import ENV, mcp_call, stdio_entry, write_mcp_config
from tests.mcp.test_mcp_tools import mcp_items, run_turn, start_thread, wait_status
from tests.support import mock_model as mm


async def test_status_call_and_read(transport: str, home: Path, model: Any) -> None:
    write_mcp_config(home, model.base_url, stdio_entry(), stdio_entry("second"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await wait_status(c, "local", "ready")
        await wait_status(c, "second", "ready")
        page = await c.call("mcpServerStatus/list", {"threadId": tid, "limit": 1})
        assert [s["name"] for s in page["data"]] == ["local"] and page["nextCursor"] == "1"
        local = page["data"][0]
        assert local["runtimeStatus"] == "connected"
        assert local["serverInfo"]["name"] == "local-test"
        assert local["resources"][0]["uri"] == "test://greeting"
        assert local["tools"]["echo"]["outputSchema"]["type"] == "object"
        rest = await c.call(
            "mcpServerStatus/list",
            {"threadId": tid, "cursor": page["nextCursor"], "detail": "toolsAndAuthOnly"},
        )
        assert [s["name"] for s in rest["data"]] == ["second"] and rest["nextCursor"] is None
        assert rest["data"][0]["resources"] == [] and rest["data"][0]["tools"]
        one = await c.call("mcpServerStatus/list", {"serverName": "second"})
        assert [s["name"] for s in one["data"]] == ["second"]
        assert one["data"][0]["runtimeStatus"] is None
        result = await c.call(
            "mcpServer/tool/call",
            {"threadId": tid, "server": "local", "tool": "add", "arguments": {"a": 5, "b": 6}},
        )
        assert result["structuredContent"] == {"sum": 11} and result["isError"] is False
        assert result["content"][0]["type"] == "text"
        unknown = await c.request(
            "mcpServer/tool/call", {"threadId": tid, "server": "nope", "tool": "x"}
        )
        assert unknown["error"]["code"] == -32603
        assert unknown["error"]["message"] == "unknown MCP server 'nope'"
        missing = await c.request("mcpServer/tool/call", {"server": "local", "tool": "add"})
        assert missing["error"]["code"] == -32600
        read = await c.call(
            "mcpServer/resource/read",
            {"threadId": tid, "server": "local", "uri": "test://greeting"},
        )
        assert read["originCallId"] is None
        assert read["contents"] == [
            {"uri": "test://greeting", "mimeType": "text/plain", "text": "hello from a resource"}
        ]
        # No approval and no items for a direct call.
        assert not [m for m in c.seen if m.get("method") == "mcpServer/elicitation/request"]
        assert not mcp_items(c, "item/started")


async def test_reload_starts_added_server(transport: str, home: Path, model: Any) -> None:
    write_mcp_config(home, model.base_url)
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        assert (await c.call("mcpServerStatus/list", {"threadId": tid}))["data"] == []
        with (home / "config.toml").open("a", encoding="utf-8") as f:
            f.write("\n" + stdio_entry("added"))
        assert await c.call("config/mcpServer/reload") == {}
        ready = await wait_status(c, "added", "ready")
        assert ready["threadId"] == tid
        listed = await c.call("mcpServerStatus/list", {"threadId": tid})
        assert [s["name"] for s in listed["data"]] == ["added"]


async def test_bad_entries_are_config_warnings(home: Path, model: Any) -> None:
    write_mcp_config(
        home,
        model.base_url,
        '[mcp_servers.broken]\nargs = ["x"]\nenv = { TOKEN = "do-not-show" }\n',
        '[mcp_servers.both]\ncommand = "x"\nurl = "http://127.0.0.1:1/mcp"\n',
        stdio_entry(),
    )
    async with open_client("in_process", home, env=ENV) as c:
        warnings = [m["params"]["summary"] for m in c.seen if m.get("method") == "configWarning"]
        assert any("`broken`" in w and "exactly one of `command`" in w for w in warnings)
        assert any("`both`" in w for w in warnings)
        assert not any("do-not-show" in w for w in warnings)
        listed = await c.call("mcpServerStatus/list", {})
        assert [s["name"] for s in listed["data"]] == ["local"]


async def test_http_server_with_bearer(
    transport: str, home: Path, model: Any, http_server: str
) -> None:
    entry = (
        "[mcp_servers.remote]\n"
        f'url = "{http_server}"\n'
        'bearer_token_env_var = "MCP_TOKEN"\n'
        'default_tools_approval_mode = "approve"\n'
        "startup_timeout_sec = 90\n"
        'http_headers = { "X-Test" = "yes" }\n'
    )
    write_mcp_config(home, model.base_url, entry)
    model.add(mcp_call("call_1", "remote", "whoami", {}), mm.sse_text("done"))
    async with open_client(transport, home, env={**ENV, "MCP_TOKEN": "secret-token"}) as c:
        tid = await start_thread(c, home)
        await wait_status(c, "remote", "ready")
        listed = await c.call("mcpServerStatus/list", {"threadId": tid})
        remote = listed["data"][0]
        assert remote["authStatus"] == "bearerToken"
        assert remote["httpOrigin"] == http_server.rsplit("/", 1)[0]
        assert (await run_turn(c, tid, "who"))["status"] == "completed"
        done = mcp_items(c, "item/completed")[0]
        assert done["status"] == "completed"
        assert done["result"]["structuredContent"] == {"result": "x-test=yes"}


async def test_http_server_wrong_token_fails(home: Path, model: Any, http_server: str) -> None:
    entry = (
        f'[mcp_servers.remote]\nurl = "{http_server}"\nbearer_token_env_var = "MCP_TOKEN"\n'
        "startup_timeout_sec = 5\n"
    )
    write_mcp_config(home, model.base_url, entry)
    async with open_client("in_process", home, env={**ENV, "MCP_TOKEN": "wrong"}) as c:
        await start_thread(c, home)
        failed = await wait_status(c, "remote", "failed")
        assert "wrong" not in failed["error"]
