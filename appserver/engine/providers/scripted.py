"""The scripted provider's replay client: offline, deterministic model replies from a script.

Owns `ScriptedClient`, which implements the same `ModelClient` protocol as the HTTP clients and
yields the same normalized events, with synthetic ids `msg_N`, `rs_N`, `call_N`, `resp_N`
(N counts per kind, per client): which reply answers a call (rules first, then the sequential
replies, then the default), when a reply is consumed, and how each step becomes events. The
script language itself (file schema, parsing, rule matching) is `script`'s.

Never: touch the network or the filesystem after loading the script; sleep unless the script
asks (`pause_ms`).

Tool calls adapt to the tools the request offers: `shell` becomes `shell_command`
{command, workdir?, timeout_ms?} (default), or `exec_command` {cmd, workdir?} or `shell`
{command: ["bash", "-lc", cmd], ...} when only those are offered; `patch` is a custom
`apply_patch` call unless apply_patch is offered as a function tool (then {"input": patch});
`plan` calls `update_plan` {plan, explanation?}.

With no script at all the client runs in echo mode: every call answers "Echo: <last user
message>" (what the built-in `scripted` provider does without $APPSERVER_SCRIPT).

Structured output: a request with an output schema (`turn/start` `outputSchema`) is answered
by a matching rule when there is one, else by a JSON value built from the schema (each string
is the last non-empty line of the user's message, clipped to `maxLength`; numbers their
`minimum` or 0; every property of an object; the first `enum` value or `anyOf` branch). It
never consumes the sequential replies, so a client's hidden structured turns (the Codex TUI
asks for a thread title that way) do not shift a script.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any

from .events import (
    Completed,
    MessageDone,
    MessageStarted,
    ModelEvent,
    ModelRequest,
    ProviderError,
    ReasoningDone,
    ReasoningStarted,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    TextDelta,
    ToolCall,
    Usage,
    error_for_status,
    stream_disconnected,
)
from .script import (
    EXHAUSTED_TEXT,
    Reply,
    Script,
    Step,
    last_user_text,
    load_script,
    parse_script,
    rule_matches,
)

_WORDS = re.compile(r"\S+\s*|\s+")
# Hand control back to the event loop this often while streaming a long reply, so an
# interrupt (or anything else) is not starved by a 100k-delta message, and so the writers
# drain as they would behind a network stream: below the WebSocket queue's soft mark (1024),
# where deltas start to merge.
_YIELD_EVERY = 256


def _tool_kinds(tools: Sequence[dict[str, Any]]) -> dict[str, str]:
    return {str(t.get("name")): str(t.get("type")) for t in tools if t.get("name")}


class ScriptedClient:
    """A ModelClient that answers from a script (see the module docstring)."""

    def __init__(self, script: str | os.PathLike[str] | list[Any] | dict[str, Any] | None) -> None:
        if script is None:
            self._script: Script | None = None
        elif isinstance(script, list | dict):
            self._script = parse_script(script)
        else:
            self._script = load_script(script)
        self._cursor = 0
        self._counters: dict[str, int] = {}

    def __repr__(self) -> str:
        mode = "echo" if self._script is None else f"{len(self._script.replies)} replies"
        return f"ScriptedClient({mode}, next={self._cursor})"

    @property
    def remaining(self) -> int:
        """Sequential replies not yet consumed."""
        return 0 if self._script is None else max(0, len(self._script.replies) - self._cursor)

    def _id(self, prefix: str) -> str:
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}_{n}"

    def _pick(self, items: Sequence[dict[str, Any]]) -> Reply:
        script = self._script
        if script is None:
            text, _ = last_user_text(items)
            return Reply([Step("text", {"text": f"Echo: {text or ''}", "chunks": None})])
        for rule in script.rules:
            if rule_matches(rule, items):
                return rule
        while self._cursor < len(script.replies):
            reply = script.replies[self._cursor]
            if reply.live_steps() or not reply.steps:
                return reply
            # Only spent errors are left: this reply is done, the next one answers.
            self._cursor += 1
        if script.default is not None:
            return script.default
        return Reply([Step("text", {"text": EXHAUSTED_TEXT, "chunks": None})])

    async def aclose(self) -> None:
        return None

    def _structured(self, req: ModelRequest, schema: dict[str, Any]) -> Reply:
        if self._script is not None:
            for rule in self._script.rules:
                if rule_matches(rule, req.input):
                    return rule
        text, _ = last_user_text(req.input)
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        value = schema_instance(schema, lines[-1] if lines else "", schema)
        body = json.dumps(value, ensure_ascii=False)
        return Reply([Step("text", {"text": body, "chunks": None})])

    async def stream(self, req: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        if req.output_schema is not None:
            reply = self._structured(req, req.output_schema)
        else:
            reply = self._pick(req.input)
        steps = reply.live_steps()
        tools = _tool_kinds(req.tools)
        # A reply is consumed as soon as it is served, unless one of its errors is still due:
        # that error will fail this call and the next call replays the reply. (Consuming up
        # front also means an interrupted reply is not replayed on the next turn.)
        script = self._script
        if (
            script is not None
            and self._cursor < len(script.replies)
            and reply is script.replies[self._cursor]
            and not any(s.kind == "error" for s in steps)
        ):
            self._cursor += 1
        out_chars = 0
        for step in steps:
            if step.kind == "error":
                step.fired += 1
                raise self._error(step)
            if step.kind == "pause_ms":
                await asyncio.sleep(step.data["ms"] / 1000.0)
            elif step.kind == "text":
                text: str = step.data["text"]
                chunks = step.data["chunks"] or _WORDS.findall(text)
                async for event in self._message(chunks, text):
                    yield event
                out_chars += len(text)
            elif step.kind == "text_repeat":
                chunk, count = step.data["chunk"], step.data["count"]
                async for event in self._message_repeat(chunk, count):
                    yield event
                out_chars += len(chunk) * count
            elif step.kind == "reasoning":
                for event in self._reasoning(step.data["parts"]):
                    yield event
                out_chars += sum(len(p) for p in step.data["parts"])
            else:
                call = self._tool_call(step, tools)
                out_chars += len(call.arguments)
                yield call
        yield Completed(self._id("resp"), self._usage(reply, req, out_chars))

    def _error(self, step: Step) -> ProviderError:
        data = step.data
        if data["disconnect"]:
            return ProviderError(
                data["message"] or "stream closed before response.completed",
                retryable=True,
                codex_error_info=stream_disconnected(None),
            )
        status = data["status"] or 500
        message = data["message"] or f"scripted error: status {status}"
        return error_for_status(status, message, code=data["code"])

    async def _message(self, chunks: Sequence[str], text: str) -> AsyncIterator[ModelEvent]:
        item_id = self._id("msg")
        yield MessageStarted(item_id)
        for i, chunk in enumerate(chunks):
            yield TextDelta(item_id, chunk)
            if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
        yield MessageDone(item_id, text, _message_item(item_id, text))

    async def _message_repeat(self, chunk: str, count: int) -> AsyncIterator[ModelEvent]:
        item_id = self._id("msg")
        yield MessageStarted(item_id)
        # One shared event object: the dataclass is frozen, so reusing it is safe and keeps a
        # 100k-delta reply cheap.
        delta = TextDelta(item_id, chunk)
        for i in range(count):
            yield delta
            if i % _YIELD_EVERY == _YIELD_EVERY - 1:
                await asyncio.sleep(0)
        text = chunk * count
        yield MessageDone(item_id, text, _message_item(item_id, text))

    def _reasoning(self, parts: list[str]) -> list[ModelEvent]:
        item_id = self._id("rs")
        events: list[ModelEvent] = [ReasoningStarted(item_id)]
        for index, part in enumerate(parts):
            events.append(ReasoningSummaryPartAdded(item_id, index))
            for piece in _WORDS.findall(part):
                events.append(ReasoningSummaryDelta(item_id, index, piece))
        raw = {
            "type": "reasoning",
            "id": item_id,
            "summary": [{"type": "summary_text", "text": p} for p in parts],
        }
        events.append(ReasoningDone(item_id, list(parts), [], raw))
        return events

    def _tool_call(self, step: Step, tools: Mapping[str, str]) -> ToolCall:
        data = step.data
        call_id = data.get("call_id") or self._id("call")
        if step.kind == "shell":
            name, args = _shell_call(data, tools)
            return _function_call(call_id, name, args)
        if step.kind == "patch":
            if tools.get("apply_patch") == "function":
                return _function_call(call_id, "apply_patch", {"input": data["input"]})
            return _custom_call(call_id, "apply_patch", data["input"])
        if step.kind == "plan":
            args = {"plan": data["plan"]}
            if data["explanation"] is not None:
                args["explanation"] = data["explanation"]
            return _function_call(call_id, "update_plan", args)
        if data["kind"] == "custom":
            return _custom_call(call_id, data["name"], data["payload"])
        raw = {
            "type": "function_call",
            "call_id": call_id,
            "name": data["name"],
            "arguments": data["payload"],
        }
        return ToolCall(call_id, data["name"], data["payload"], "function", raw)

    def _usage(self, reply: Reply, req: ModelRequest, out_chars: int) -> Usage:
        given = reply.usage or {}
        # ~4 characters per token: good enough for token-usage notifications offline.
        input_tokens = given.get(
            "input_tokens", (len(req.instructions) + len(json.dumps(req.input))) // 4
        )
        output_tokens = given.get("output_tokens", out_chars // 4)
        return Usage(
            input_tokens=input_tokens,
            cached_input_tokens=given.get("cached_input_tokens", 0),
            output_tokens=output_tokens,
            reasoning_output_tokens=given.get("reasoning_output_tokens", 0),
            total_tokens=given.get("total_tokens", input_tokens + output_tokens),
        )


def _message_item(item_id: str, text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "id": item_id,
        "content": [{"type": "output_text", "text": text}],
    }


def _shell_call(data: Mapping[str, Any], tools: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
    command: str = data["command"]
    extras = {k: data[k] for k in ("workdir", "timeout_ms") if data.get(k) is not None}
    if "shell_command" in tools or not tools:
        return "shell_command", {"command": command, **extras}
    if "exec_command" in tools:
        args: dict[str, Any] = {"cmd": command}
        if "workdir" in extras:
            args["workdir"] = extras["workdir"]
        return "exec_command", args
    if "shell" in tools:
        return "shell", {"command": ["bash", "-lc", command], **extras}
    return "shell_command", {"command": command, **extras}


def _function_call(call_id: str, name: str, args: Mapping[str, Any]) -> ToolCall:
    arguments = json.dumps(dict(args))
    raw = {"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments}
    return ToolCall(call_id, name, arguments, "function", raw)


def _custom_call(call_id: str, name: str, tool_input: str) -> ToolCall:
    raw = {"type": "custom_tool_call", "call_id": call_id, "name": name, "input": tool_input}
    return ToolCall(call_id, name, tool_input, "custom", raw)


def schema_instance(schema: Any, text: str, root: Any, depth: int = 0) -> Any:
    """A value that satisfies the common JSON-schema keywords of ``schema`` (see the module
    docstring); ``$ref`` is resolved within ``root``. Bounded in depth."""
    if not isinstance(schema, dict) or depth > 16:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return schema_instance(target, text, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return schema_instance(options[0], text, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties")
        if not isinstance(props, dict):
            return {}
        return {str(k): schema_instance(v, text, root, depth + 1) for k, v in props.items()}
    if kind == "array":
        count = schema.get("minItems", 0)
        count = count if isinstance(count, int) and 0 <= count <= 16 else 0
        return [schema_instance(schema.get("items"), text, root, depth + 1) for _ in range(count)]
    if kind == "string":
        out = text
        longest, shortest = schema.get("maxLength"), schema.get("minLength")
        if isinstance(longest, int) and longest >= 0:
            out = out[:longest].rstrip() or out[:longest]
        if isinstance(shortest, int) and len(out) < shortest:
            out = out + "x" * (shortest - len(out))
        return out
    if kind in ("integer", "number"):
        low = schema.get("minimum")
        return low if isinstance(low, int | float) and not isinstance(low, bool) else 0
    if kind == "boolean":
        return False
    return None
