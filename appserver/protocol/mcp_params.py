"""Params models of the MCP methods: ``mcpServerStatus/list``, ``mcpServer/tool/call``,
``mcpServer/resource/read`` and ``config/mcpServer/reload``.

Models only (schema: ``ListMcpServerStatusParams``, ``McpServerToolCallParams``,
``McpResourceReadParams``); what they mean is ``server/handlers/mcp.py``'s.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from appserver.protocol.base import WireModel


class McpServerStatusListParams(WireModel):
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=0)
    detail: Literal["full", "toolsAndAuthOnly"] | None = None
    server_name: str | None = None
    thread_id: str | None = None


class McpServerToolCallParams(WireModel):
    thread_id: str
    server: str
    tool: str
    arguments: Any = None
    meta: Any = Field(default=None, alias="_meta")


class McpResourceReadParams(WireModel):
    server: str
    uri: str
    thread_id: str | None = None
    origin_call_id: str | None = None


class McpReloadParams(WireModel):
    pass
