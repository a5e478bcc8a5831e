"""Client-provided tools: ``thread/start.dynamicTools`` (the stock TUI's ``codex_tui``
namespace, an IDE's own tools).

Owns their validation (``parse``: the schema's ``DynamicToolSpec``, a function or a namespace
of functions, and the older flat ``{namespace?, name, description, inputSchema}`` shape), the
specs the model is offered (``model_specs``: a function, or a ``namespace`` tool as the
reference sends it), and running a call: a ``dynamicToolCall`` item, the ``item/tool/call``
server request to the thread's client (``client_requests``), and the client's answer back to
the model. The list is stored with the thread (its ``session_meta``) so a resumed thread offers
the same tools. It must never run anything itself, and never leave a call waiting on a client
that has gone: such a call fails, the model is told, and the turn goes on.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import orjson

from appserver.engine import views
from appserver.engine.client_requests import ClientOps, ClientUnavailable, ask_client
from appserver.engine.errors import EngineError
from appserver.engine.providers.events import ToolCall
from appserver.engine.thread_state import LoadedThread
from appserver.engine.tool_specs import TOOLS

if TYPE_CHECKING:
    from appserver.protocol.wire_types import DynamicToolCallParams

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_TOOLS = 128

# What the model is told when no answer came (the reference's own wording).
FAILED_TEXT = "dynamic tool request failed"
CANCELLED_TEXT = "dynamic tool call was cancelled before receiving a response"


def parse(specs: list[Any] | None, reserved: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """The ``dynamicTools`` of a ``thread/start`` in the schema's shape; ValueError says what
    is wrong. ``reserved`` are names a top-level tool may not take (the built-in tools)."""
    out: list[dict[str, Any]] = []
    namespaces: dict[str, dict[str, Any]] = {}
    for i, spec in enumerate(specs or []):
        if not isinstance(spec, dict):
            raise ValueError(f"dynamicTools.{i}: expected an object")
        kind = spec.get("type")
        if kind == "namespace":
            name = _name(spec.get("name"), f"dynamicTools.{i}.name")
            tools = spec.get("tools")
            if not isinstance(tools, list) or not tools:
                raise ValueError(f"dynamicTools.{i}.tools: expected a non-empty list")
            target = namespaces.get(name)
            if target is None:
                target = {
                    "type": "namespace",
                    "name": name,
                    "description": _text(spec.get("description"), f"dynamicTools.{i}"),
                    "tools": [],
                }
                namespaces[name] = target
                out.append(target)
            for j, tool in enumerate(tools):
                target["tools"].append(_function(tool, f"dynamicTools.{i}.tools.{j}"))
        elif kind in ("function", None):
            where = f"dynamicTools.{i}"
            function = _function({**spec, "type": "function"}, where)
            namespace = spec.get("namespace")
            if namespace is None:
                out.append(function)
                continue
            ns = _name(namespace, f"{where}.namespace")
            target = namespaces.get(ns)
            if target is None:
                description = f"Tools in the {ns} namespace."
                target = {"type": "namespace", "name": ns, "description": description, "tools": []}
                namespaces[ns] = target
                out.append(target)
            target["tools"].append(function)
        else:
            raise ValueError(f"dynamicTools.{i}.type: unknown variant `{kind}`")
    _check_unique(out, reserved)
    return out


_BUILT_IN = frozenset(str(tool["name"]) for tool in TOOLS)


def check(specs: list[Any] | None) -> list[dict[str, Any]]:
    """``parse`` for a client's request: the built-in tools' names are reserved, and what is
    wrong is an ``EngineError`` (the client's -32600)."""
    try:
        return parse(specs, reserved=_BUILT_IN)
    except ValueError as exc:
        raise EngineError(f"Invalid request: {exc}") from None


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValueError(f"{where}: a tool name is 1 to 64 letters, digits, `_` or `-`")
    return value


def _text(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}.description: expected a string")
    return value


def _function(spec: Any, where: str) -> dict[str, Any]:
    if not isinstance(spec, dict) or spec.get("type", "function") != "function":
        raise ValueError(f"{where}: expected a function tool")
    schema = spec.get("inputSchema")
    if not isinstance(schema, dict):
        raise ValueError(f"{where}.inputSchema: expected a JSON Schema object")
    defer = spec.get("deferLoading", False)
    if not isinstance(defer, bool):
        raise ValueError(f"{where}.deferLoading: expected a boolean")
    return {
        "type": "function",
        "name": _name(spec.get("name"), f"{where}.name"),
        "description": _text(spec.get("description"), where),
        "inputSchema": schema,
        "deferLoading": defer,
    }


def _check_unique(specs: list[dict[str, Any]], reserved: frozenset[str]) -> None:
    seen: set[tuple[str | None, str]] = set()
    for spec in specs:
        pairs = (
            [(spec["name"], t["name"]) for t in spec["tools"]]
            if spec["type"] == "namespace"
            else [(None, spec["name"])]
        )
        for pair in pairs:
            if pair in seen:
                raise ValueError(f"dynamicTools: the tool `{_label(*pair)}` is given twice")
            if pair[0] is None and pair[1] in reserved:
                raise ValueError(f"dynamicTools: `{pair[1]}` is the name of a built-in tool")
            seen.add(pair)
    if len(seen) > MAX_TOOLS:
        raise ValueError(f"dynamicTools: at most {MAX_TOOLS} tools")


def _label(namespace: str | None, name: str) -> str:
    return f"{namespace}.{name}" if namespace else name


def _model_function(spec: dict[str, Any]) -> dict[str, Any]:
    # Offered whether or not the client asked to defer loading it: there is no tool search
    # here to load it later, and a tool the model cannot see could never be called.
    return {
        "type": "function",
        "name": spec["name"],
        "description": spec["description"],
        "strict": False,
        "parameters": spec["inputSchema"],
    }


def model_specs(thread: LoadedThread) -> list[dict[str, Any]]:
    """The thread's client tools as a model request offers them."""
    out: list[dict[str, Any]] = []
    for spec in thread.dynamic_tools:
        if spec["type"] == "namespace":
            tools = [_model_function(t) for t in spec["tools"]]
            ns = {"type": "namespace", "name": spec["name"], "description": spec["description"]}
            out.append({**ns, "tools": tools})
        else:
            out.append(_model_function(spec))
    return out


def find(thread: LoadedThread, call: ToolCall) -> dict[str, Any] | None:
    """The client tool ``call`` names (its namespace too), or None when it is not one."""
    namespace = call.raw_item.get("namespace")
    for spec in thread.dynamic_tools:
        if spec["type"] == "namespace":
            if spec["name"] == namespace:
                for tool in spec["tools"]:
                    if tool["name"] == call.name:
                        return {**tool, "namespace": namespace}
        elif namespace is None and spec["name"] == call.name:
            return {**spec, "namespace": None}
    return None


def _arguments(call: ToolCall) -> Any:
    try:
        return orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        return call.arguments


def _content_items(result: Any) -> tuple[list[dict[str, Any]], bool] | None:
    """A client's answer (``DynamicToolCallResponse``) as (contentItems, success); None when
    it is not one."""
    if not isinstance(result, dict) or not isinstance(result.get("success"), bool):
        return None
    items = result.get("contentItems")
    if not isinstance(items, list):
        return None
    kept: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type") if isinstance(item, dict) else None
        key = {"inputText": "text", "inputImage": "imageUrl", "inputAudio": "audioUrl"}.get(
            str(kind)
        )
        if key is None or not isinstance(item.get(key), str):
            return None
        kept.append({"type": kind, key: item[key]})
    return kept, result["success"]


def model_output(items: list[dict[str, Any]]) -> str:
    """What the model reads back: the text items, in order (an image or audio item is named
    by its URL)."""
    parts = []
    for item in items:
        if item["type"] == "inputText":
            parts.append(item["text"])
        elif item["type"] == "inputImage":
            parts.append(f"[image: {item['imageUrl'][:200]}]")
        else:
            parts.append(f"[audio: {item['audioUrl'][:200]}]")
    return "\n".join(parts)


async def execute(ops: ClientOps, call: ToolCall, tool: dict[str, Any]) -> str:
    """Run one client tool call: the item, the ``item/tool/call`` request, the answer."""
    ids = views.turn_ids(ops.thread, ops.turn)
    arguments = _arguments(call)
    item: dict[str, Any] = {
        "type": "dynamicToolCall",
        "id": call.call_id,
        "namespace": tool["namespace"],
        "tool": tool["name"],
        "arguments": arguments,
        "status": "inProgress",
        "contentItems": None,
        "success": None,
        "durationMs": None,
    }
    await ops.emit("item/started", views.item_started(ops.thread, ops.turn, dict(item)))
    started = time.monotonic()
    params: DynamicToolCallParams = {
        **ids,
        "callId": call.call_id,
        "namespace": tool["namespace"],
        "tool": tool["name"],
        "arguments": arguments,
    }
    try:
        answer = _content_items(await ask_client(ops, "item/tool/call", params))
    except ClientUnavailable as exc:
        text = CANCELLED_TEXT if exc.cancelled else FAILED_TEXT
        answer = [{"type": "inputText", "text": text}], False
    if answer is None:
        answer = [{"type": "inputText", "text": FAILED_TEXT}], False
    items, success = answer
    item.update(
        status="completed" if success else "failed",
        contentItems=items,
        success=success,
        durationMs=int((time.monotonic() - started) * 1000),
    )
    ops.record_item(item)
    await ops.emit("item/completed", views.item_completed(ops.thread, ops.turn, dict(item)))
    return model_output(items)


def stored(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The client tools a stored thread's ``session_meta`` keeps (none when unreadable:
    rollouts outlive code versions)."""
    try:
        return parse(meta.get("dynamic_tools"))
    except ValueError:
        return []
