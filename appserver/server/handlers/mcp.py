"""The MCP methods: ``mcpServerStatus/list``, ``mcpServer/tool/call``,
``mcpServer/resource/read`` and ``config/mcpServer/reload``.

Owns the mapping from protocol to ``McpManager``: the ``McpServerStatus`` view of each server
(tools keyed by name, resources, auth and runtime status), paging, and the direct calls (no
approval, no items, as in the reference). Unlike the reference, a status list never waits for
a server still starting: it shows it ``starting`` with the tools it has so far (none). A
direct call or read waits for a starting server at most its ``startup_timeout_sec``. It must
never hang on a server or show a header or environment value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any, cast

from appserver.core.processor import RequestContext
from appserver.engine.manager import ThreadManager
from appserver.engine.mcp.config import McpServerConfig, parse_servers
from appserver.engine.mcp.connection import McpCallError, McpConnection
from appserver.engine.mcp.manager import McpManager
from appserver.protocol.errors import internal_error, invalid_request
from appserver.protocol.mcp_params import (
    McpReloadParams,
    McpResourceReadParams,
    McpServerStatusListParams,
    McpServerToolCallParams,
)
from appserver.protocol.registry import MethodRegistry
from appserver.server.config import ConfigError, LoadedConfig, load_config

if TYPE_CHECKING:
    from appserver.protocol.wire_types import (
        ListMcpServerStatusResponse,
        McpResourceReadResponse,
        McpServerRefreshResponse,
        McpServerStatus,
        McpServerToolCallResponse,
        ResourceContent,
    )

log = logging.getLogger("appserver.mcp")

PAGE_DEFAULT = 100
RUNTIME = {
    "starting": "starting",
    "ready": "connected",
    "failed": "failed",
    "cancelled": "cancelled",
}


def status_entry(
    name: str,
    cfg: McpServerConfig,
    conn: McpConnection | None,
    *,
    with_runtime: bool,
    full: bool,
) -> dict[str, Any]:
    tools: dict[str, Any] = {}
    if conn is not None:
        tools = {str(t["name"]): t for t in conn.tools if cfg.allows_tool(str(t.get("name")))}
    entry: dict[str, Any] = {
        "name": name,
        "tools": tools,
        "resources": list(conn.resources) if conn is not None and full else [],
        "resourceTemplates": list(conn.templates) if conn is not None and full else [],
        "authStatus": cfg.auth_status(),
        "runtimeStatus": (RUNTIME.get(conn.status) if conn else "notStarted")
        if with_runtime
        else None,
        "serverInfo": conn.server_info if conn is not None else None,
        "serverCapabilities": conn.capabilities if conn is not None else None,
        "httpOrigin": cfg.http_origin(),
        "pluginId": None,
        "toolsError": conn.error if conn is not None and conn.status == "failed" else None,
    }
    return entry


class McpHandlers:
    def __init__(self, config: LoadedConfig, threads: ThreadManager, mcp: McpManager) -> None:
        self.config = config
        self.threads = threads
        self.mcp = mcp

    def register(self, r: MethodRegistry) -> None:
        r.register(
            "mcpServerStatus/list",
            McpServerStatusListParams,
            self.status_list,
            result="ListMcpServerStatusResponse",
        )
        r.register(
            "mcpServer/tool/call",
            McpServerToolCallParams,
            self.tool_call,
            result="McpServerToolCallResponse",
        )
        r.register(
            "mcpServer/resource/read",
            McpResourceReadParams,
            self.resource_read,
            result="McpResourceReadResponse",
        )
        r.register(
            "config/mcpServer/reload",
            McpReloadParams,
            self.reload,
            result="McpServerRefreshResponse",
            params_optional=True,
        )

    def _thread(self, thread_id: str | None) -> str | None:
        if thread_id is not None and thread_id not in self.threads.loaded:
            raise invalid_request(f"thread not found: {thread_id}")
        return thread_id

    async def status_list(
        self, ctx: RequestContext, p: McpServerStatusListParams
    ) -> ListMcpServerStatusResponse:
        thread_id = self._thread(p.thread_id)
        if thread_id is not None:
            servers = self.mcp.servers_of(thread_id)
        else:
            servers = {n: c for n, c in self.mcp.configured.items() if c.enabled}
            self.mcp.start_configured()
        if p.server_name is not None:
            servers = {n: c for n, c in servers.items() if n == p.server_name}
        names = sorted(servers)
        start = 0
        if p.cursor:
            if not p.cursor.isdigit() or int(p.cursor) > len(names):
                raise invalid_request(f"invalid cursor: {p.cursor}")
            start = int(p.cursor)
        limit = p.limit or PAGE_DEFAULT
        page = names[start : start + limit]
        full = p.detail != "toolsAndAuthOnly"
        data = [
            status_entry(
                n,
                servers[n],
                self.mcp.connection(servers[n]),
                with_runtime=thread_id is not None,
                full=full,
            )
            for n in page
        ]
        more = start + len(page) < len(names)
        return {
            "data": cast("list[McpServerStatus]", data),
            "nextCursor": str(start + len(page)) if more else None,
        }

    async def _ready(self, thread_id: str | None, server: str) -> McpConnection:
        cfg = self.mcp.server(thread_id, server)
        if cfg is None:
            raise internal_error(f"unknown MCP server '{server}'")
        if thread_id is None:
            self.mcp.start_configured()
        conn = self.mcp.connection(cfg)
        if conn is None:
            raise internal_error(f"MCP server '{server}' is not running")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(conn.settled.wait(), cfg.startup_timeout_s)
        if conn.status != "ready":
            raise internal_error(conn.error or f"MCP server '{server}' is {conn.status}")
        return conn

    async def tool_call(
        self, ctx: RequestContext, p: McpServerToolCallParams
    ) -> McpServerToolCallResponse:
        thread_id = self._thread(p.thread_id)
        conn = await self._ready(thread_id, p.server)
        if p.arguments is not None and not isinstance(p.arguments, dict):
            raise invalid_request("Invalid request: `arguments` must be an object")
        try:
            result = await conn.call_tool(p.tool, p.arguments)
        except McpCallError as exc:
            raise internal_error(f"tool call failed for `{p.server}/{p.tool}`: {exc}") from None
        wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        return {
            "content": wire.get("content", []),
            "structuredContent": wire.get("structuredContent"),
            "isError": bool(wire.get("isError", False)),
            "_meta": wire.get("_meta"),
        }

    async def resource_read(
        self, ctx: RequestContext, p: McpResourceReadParams
    ) -> McpResourceReadResponse:
        thread_id = self._thread(p.thread_id)
        conn = await self._ready(thread_id, p.server)
        try:
            contents = await conn.read_resource(p.uri)
        except McpCallError as exc:
            raise internal_error(f"resource read failed for `{p.server}`: {exc}") from None
        return {"contents": cast("list[ResourceContent]", contents), "originCallId": None}

    async def reload(self, ctx: RequestContext, p: McpReloadParams) -> McpServerRefreshResponse:
        """config.toml's ``[mcp_servers]`` read again (``-c`` overrides are not replayed):
        added servers start in every loaded thread, removed ones stop, failed ones restart.
        A bad entry is skipped and logged, as at startup."""
        try:
            fresh = await asyncio.to_thread(load_config, self.config.home)
        except ConfigError as exc:
            raise invalid_request(str(exc)) from None
        parsed = parse_servers(fresh.get("mcp_servers"))
        for problem in parsed.warnings + parsed.errors:
            log.warning("%s", problem)
        await self.mcp.reload(parsed.servers)
        return {}
