"""MCP tools inside a turn: what the model is offered, and running the calls it makes.

Owns ``ThreadMcp`` (one thread's view of the ``McpManager``): the model's tool specs, named
as the reference names them (one ``namespace`` tool per server, ``mcp__<server>``, holding a
``function`` per MCP tool with its input schema); recognising a call to one (``namespace``
plus ``name``, or the flat ``mcp__<server>__<tool>`` a Chat Completions model uses); and the
call itself as an ``mcpToolCall`` item: ``item/started``, approval, ``item/mcpToolCall/progress``
as the server reports progress, ``item/completed`` with ``result`` ``{content,
structuredContent}`` or ``error`` and ``durationMs``; the text the model gets back.

Approval is the reference's: a call asks (``mcpServer/elicitation/request`` with
``_meta.codex_approval_kind = "mcp_tool_call"``) unless the server's (or the tool's)
approval mode is ``approve``, the tool is declared read-only (``readOnlyHint``, not
``destructiveHint``) under the default ``auto`` mode, or the user accepted it for the session;
under approval policy ``never`` a call that would ask fails unrun. It must never run a tool
the user declined, and never let a server's failure end the turn.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any, cast

import orjson

from appserver.engine import views
from appserver.engine.mcp.config import McpServerConfig
from appserver.engine.mcp.connection import McpCallError, McpConnection
from appserver.engine.mcp.manager import Caller, McpManager
from appserver.engine.providers.events import ToolCall

if TYPE_CHECKING:
    from appserver.engine.tool_calls import TurnOps
    from appserver.protocol.wire_types import McpServerElicitationRequestParams

PREFIX = "mcp__"
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def model_tool_name(tool: str) -> str | None:
    """The tool's name as offered to the model, or None when the API cannot take it."""
    return tool if _FUNCTION_NAME.match(tool) else None


class ThreadMcp:
    def __init__(self, manager: McpManager, thread_id: str) -> None:
        self.manager = manager
        self.thread_id = thread_id

    # -- what the model sees -----------------------------------------------------------------
    def specs(self) -> list[dict[str, Any]]:
        specs: list[dict[str, Any]] = []
        for name, cfg, conn in self.manager.ready_servers(self.thread_id):
            functions = []
            for tool in conn.tools:
                tool_name = str(tool.get("name", ""))
                if not cfg.allows_tool(tool_name) or model_tool_name(tool_name) is None:
                    continue
                schema = tool.get("inputSchema")
                functions.append(
                    {
                        "type": "function",
                        "name": tool_name,
                        "description": str(tool.get("description") or tool.get("title") or ""),
                        "strict": False,
                        "parameters": schema
                        if isinstance(schema, dict)
                        else {"type": "object", "properties": {}},
                    }
                )
            if functions:
                specs.append(
                    {
                        "type": "namespace",
                        "name": PREFIX + name,
                        "description": f"Tools of the MCP server `{name}`.",
                        "tools": functions,
                    }
                )
        return specs

    # -- calls --------------------------------------------------------------------------------
    def target(self, call: ToolCall) -> tuple[str, str] | None:
        """(server, tool) when ``call`` is a call to an MCP tool, else None."""
        namespace = call.raw_item.get("namespace")
        if isinstance(namespace, str) and namespace.startswith(PREFIX):
            return namespace[len(PREFIX) :], call.name
        if call.name.startswith(PREFIX):
            server, sep, tool = call.name[len(PREFIX) :].partition("__")
            if sep and server and tool:
                return server, tool
        return None

    async def execute(self, ops: TurnOps, call: ToolCall, server: str, tool: str) -> str:
        started = time.monotonic()
        arguments = _arguments(call)
        item: dict[str, Any] = {
            "type": "mcpToolCall",
            "id": call.call_id,
            "server": server,
            "tool": tool,
            "status": "inProgress",
            "arguments": arguments,
            "result": None,
            "error": None,
            "durationMs": None,
        }
        await ops.emit("item/started", views.item_started(ops.thread, ops.turn, dict(item)))
        cfg = self.manager.server(self.thread_id, server)
        conn = self.manager.connection(cfg) if cfg is not None else None
        if cfg is None or conn is None:
            return await _fail(ops, item, started, f"unknown MCP server '{server}'")
        definition = _tool(conn, tool)
        if definition is None or not cfg.allows_tool(tool):
            return await _fail(ops, item, started, f"unknown MCP tool '{tool}' on '{server}'")
        if not isinstance(arguments, dict):
            return await _fail(ops, item, started, "the arguments must be a JSON object")
        if self._needs_approval(cfg, tool, definition):
            if ops.thread.settings.approval_policy == "never":
                return await _fail(
                    ops,
                    item,
                    started,
                    "MCP tool call requires approval, but approval policy is never",
                )
            answer = await ops.ask(
                "mcpServer/elicitation/request",
                cast(
                    "McpServerElicitationRequestParams",
                    approval_params(ops, server, tool, definition, arguments),
                ),
            )
            action = answer.get("action") if isinstance(answer, dict) else None
            if action != "accept":
                return await _fail(ops, item, started, "user rejected MCP tool call")
            meta = answer.get("_meta") if isinstance(answer, dict) else None
            if isinstance(meta, dict) and meta.get("persist") in ("session", "always"):
                self.manager.approve_for_session(self.thread_id, server, tool)

        async def progress(done: float, total: float | None, message: str | None) -> None:
            text = message or (f"{done:g}/{total:g}" if total else f"{done:g}")
            await ops.emit(
                "item/mcpToolCall/progress",
                {
                    "threadId": ops.thread.id,
                    "turnId": ops.turn.id,
                    "itemId": call.call_id,
                    "message": text,
                },
            )

        caller = Caller(self.thread_id, ops.turn.id, server)
        self.manager.calling(conn, caller)
        try:
            result = await conn.call_tool(tool, arguments, on_progress=progress)
        except McpCallError as exc:
            return await _fail(
                ops,
                item,
                started,
                f"tool call error: tool call failed for `{server}/{tool}`: {exc}",
            )
        finally:
            self.manager.done_calling(conn, caller)
        wire = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        item.update(
            status="failed" if result.is_error else "completed",
            result={
                "content": wire.get("content", []),
                "structuredContent": wire.get("structuredContent"),
                "_meta": wire.get("_meta"),
            },
            durationMs=_ms(started),
        )
        await _complete(ops, item)
        return model_output(wire, time.monotonic() - started)

    def _needs_approval(self, cfg: McpServerConfig, tool: str, definition: dict[str, Any]) -> bool:
        if self.manager.approved_for_session(self.thread_id, cfg.name, tool):
            return False
        mode = cfg.approval_for(tool)
        if mode == "approve":
            return False
        if mode == "prompt":
            return True
        notes = definition.get("annotations")
        notes = notes if isinstance(notes, dict) else {}
        return not (notes.get("readOnlyHint") is True and notes.get("destructiveHint") is not True)


def approval_params(
    ops: TurnOps, server: str, tool: str, definition: dict[str, Any], arguments: Any
) -> dict[str, Any]:
    """The approval question, in the reference's shape (an elicitation of an empty form)."""
    args = arguments if isinstance(arguments, dict) else {}
    return {
        "threadId": ops.thread.id,
        "turnId": ops.turn.id,
        "serverName": server,
        "mode": "form",
        "message": f'Allow the {server} MCP server to run tool "{tool}"?',
        "requestedSchema": {"type": "object", "properties": {}},
        "_meta": {
            "codex_approval_kind": "mcp_tool_call",
            "persist": ["session", "always"],
            "tool_name": tool,
            "tool_description": definition.get("description"),
            "tool_params": arguments,
            "tool_params_display": [
                {"name": str(k), "value": orjson.dumps(v).decode()} for k, v in args.items()
            ],
        },
    }


def model_output(result: dict[str, Any], seconds: float) -> str:
    """What the model reads: the structured content as JSON when there is some, else the
    text of the content (non-text content as JSON)."""
    structured = result.get("structuredContent")
    if structured is not None:
        body = orjson.dumps(structured).decode()
    else:
        parts = []
        for block in result.get("content", []):
            if isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            else:
                parts.append(orjson.dumps(block).decode())
        body = "\n".join(parts)
    prefix = "Error: " if result.get("isError") else ""
    return f"Wall time: {seconds:.4f} seconds\nOutput:\n{prefix}{body}"


def _tool(conn: McpConnection, name: str) -> dict[str, Any] | None:
    return next((t for t in conn.tools if t.get("name") == name), None)


def _arguments(call: ToolCall) -> Any:
    try:
        args = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        return call.arguments
    return args


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def _complete(ops: TurnOps, item: dict[str, Any]) -> None:
    ops.record_item(item)
    await ops.emit("item/completed", views.item_completed(ops.thread, ops.turn, dict(item)))


async def _fail(ops: TurnOps, item: dict[str, Any], started: float, message: str) -> str:
    item.update(status="failed", error={"message": message}, durationMs=_ms(started))
    await _complete(ops, item)
    return message
