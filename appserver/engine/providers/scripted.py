"""The scripted provider: offline, deterministic model replies read from a JSON or YAML file.

Owns: the script file schema (below), its validation (`ScriptError` names file, reply and
step), and `ScriptedClient`, which implements the same `ModelClient` protocol as the HTTP
clients and yields the same normalized events, with synthetic ids `msg_N`, `rs_N`, `call_N`,
`resp_N` (N counts per kind, per client).

Never: touch the network or the filesystem after loading the script; sleep unless the script
asks (`pause_ms`).

Script file schema
==================
The file (`.json`, `.yaml`/`.yml`; anything else is parsed as YAML, a superset of JSON) is
either a list of replies, or a mapping::

    replies: [...]        # consumed in order, one per model call
    rules:   [...]        # checked first on every call, never consumed (see Rules)
    default: <reply>      # answers once replies are exhausted; default "(script exhausted)"

A reply is one of:

* a string — a text message;
* a mapping of step keys (below) — its steps run in this fixed order: error, pause_ms,
  reasoning, text, text_repeat, shell, patch, plan, tool;
* a list of steps — run in the given order; each element is a string (text) or a mapping as
  above (so one reply may hold reasoning + text + several tool calls, in any order).

Steps::

    text: "Hello! "                 # a message streamed as word-sized deltas…
    chunks: ["Hel", "lo! "]         #   …or exactly these deltas (their concatenation is the
                                    #   text; `text` may then be omitted)
    text_repeat: {chunk: "x", count: 100000}   # one message of `count` identical deltas
    reasoning: "Thinking"           # a reasoning item; a list gives several summary parts
    shell: "echo hi"                # shell tool call; or {command, workdir?, timeout_ms?}
    workdir: "/tmp"                 #   modifiers for `shell`
    timeout_ms: 5000
    patch: "*** Begin Patch\n..."   # apply_patch call with this input
    plan: [{step: "a", status: "completed"}]   # update_plan call
    explanation: "why"              #   modifier for `plan`
    tool: {name: "x", arguments: {...}}        # any function call (arguments: mapping or
                                               # JSON text); {name, input: "..."} or
                                               # kind: custom → a custom (free-form) call
    call_id: "call_7"               # modifier: explicit id for the tool call in this mapping
    error: {status: 500}            # fail this model call (see Errors)
    pause_ms: 200                   # wait before the next step (for interrupt demos)
    usage: {input_tokens: 10, output_tokens: 3}   # reply-level; default: ~chars/4 estimates

Tool calls adapt to the tools the request offers: `shell` becomes `shell_command`
{command, workdir?, timeout_ms?} (default), or `exec_command` {cmd, workdir?} or `shell`
{command: ["bash", "-lc", cmd], ...} when only those are offered; `patch` is a custom
`apply_patch` call unless apply_patch is offered as a function tool (then {"input": patch});
`plan` calls `update_plan` {plan, explanation?}.

Errors: `error: {status?: int, message?: str, code?: str, disconnect?: bool, times?: int}`.
Steps before the error are streamed, then the call fails with the ProviderError an HTTP
`status` would give (default 500, retryable; 401 → unauthorized, 400 → badRequest, …;
`code: context_length_exceeded` → contextWindowExceeded), or with a retryable
"stream disconnected" error when `disconnect: true`. The reply is NOT consumed: the next call
replays it, skipping errors that already fired `times` times (default 1). A reply holding
only spent errors is consumed and the next reply answers that call.

Rules (optional; the "rule mode" of the reference mock): a reply mapping with
`when_contains: "RUN_SHELL"` matches when the latest user message contains that text and no
tool output came after it (a fresh user turn); `when_tool_output: true` (or a substring)
matches when the last input item is a tool output (containing it). The rule's reply is its
`reply:` value, or the mapping minus the `when_*` keys. Rules may sit in the `rules:` list or
directly in the top-level reply list; either way they are never consumed.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
    content_text,
    error_for_status,
    stream_disconnected,
)

EXHAUSTED_TEXT = "(script exhausted)"

_STEP_ORDER = (
    "error",
    "pause_ms",
    "reasoning",
    "text",
    "text_repeat",
    "shell",
    "patch",
    "plan",
    "tool",
)
_MODIFIERS = frozenset({"chunks", "workdir", "timeout_ms", "explanation", "call_id"})
_REPLY_KEYS = frozenset({"usage", "when_contains", "when_tool_output", "reply"})
_TOOL_OUTPUT_TYPES = frozenset({"function_call_output", "custom_tool_call_output"})
_WORDS = re.compile(r"\S+\s*|\s+")
# Hand control back to the event loop this often while streaming a long reply, so an
# interrupt (or anything else) is not starved by a 100k-delta message, and so the writers
# drain as they would behind a network stream: below the WebSocket queue's soft mark (1024),
# where deltas start to merge.
_YIELD_EVERY = 256


class ScriptError(ValueError):
    """The script file is malformed; the message says where."""


@dataclass
class _Step:
    kind: str
    data: dict[str, Any]
    fired: int = 0  # errors only: how many calls this error already failed


@dataclass
class _Reply:
    steps: list[_Step]
    usage: dict[str, Any] | None = None
    when_contains: str | None = None
    when_tool_output: bool | str | None = None
    where: str = ""

    @property
    def is_rule(self) -> bool:
        return self.when_contains is not None or self.when_tool_output is not None

    def live_steps(self) -> list[_Step]:
        return [s for s in self.steps if s.kind != "error" or s.fired < int(s.data.get("times", 1))]


@dataclass
class _Script:
    replies: list[_Reply] = field(default_factory=list)
    rules: list[_Reply] = field(default_factory=list)
    default: _Reply | None = None


# ---------------------------------------------------------------------------------------------
# Parsing


def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ScriptError(f"{where}: {msg}")


def _parse_step_value(kind: str, value: Any, mods: Mapping[str, Any], where: str) -> _Step:
    data: dict[str, Any]
    if kind == "text":
        chunks = mods.get("chunks")
        if chunks is not None:
            _need(
                isinstance(chunks, list) and all(isinstance(c, str) for c in chunks),
                where,
                "chunks must be a list of strings",
            )
        text = "".join(chunks) if chunks is not None and value is None else value
        _need(isinstance(text, str), where, "text must be a string")
        if chunks is not None:
            _need("".join(chunks) == text, where, "chunks must join to the text")
        data = {"text": text, "chunks": chunks}
    elif kind == "text_repeat":
        _need(isinstance(value, Mapping), where, "text_repeat must be {chunk, count}")
        chunk, count = value.get("chunk"), value.get("count")
        _need(isinstance(chunk, str) and chunk != "", where, "text_repeat.chunk: non-empty text")
        _need(isinstance(count, int) and count >= 0, where, "text_repeat.count: integer >= 0")
        data = {"chunk": chunk, "count": count}
    elif kind == "reasoning":
        parts = [value] if isinstance(value, str) else value
        _need(
            isinstance(parts, list) and all(isinstance(p, str) for p in parts),
            where,
            "reasoning must be a string or a list of strings",
        )
        data = {"parts": parts}
    elif kind == "shell":
        spec = {"command": value} if isinstance(value, str) else value
        _need(
            isinstance(spec, Mapping) and isinstance(spec.get("command"), str),
            where,
            "shell must be a command string or {command, workdir?, timeout_ms?}",
        )
        data = {
            "command": spec["command"],
            "workdir": spec.get("workdir", mods.get("workdir")),
            "timeout_ms": spec.get("timeout_ms", mods.get("timeout_ms")),
        }
    elif kind == "patch":
        _need(isinstance(value, str), where, "patch must be the patch text")
        data = {"input": value}
    elif kind == "plan":
        _need(isinstance(value, list), where, "plan must be a list of {step, status}")
        for entry in value:
            _need(
                isinstance(entry, Mapping) and isinstance(entry.get("step"), str),
                where,
                "each plan entry needs a `step` string",
            )
        data = {"plan": [dict(e) for e in value], "explanation": mods.get("explanation")}
    elif kind == "tool":
        _need(
            isinstance(value, Mapping) and isinstance(value.get("name"), str),
            where,
            "tool must be {name, arguments?} or {name, input}",
        )
        tool_kind = value.get("kind") or ("custom" if "input" in value else "function")
        _need(tool_kind in ("function", "custom"), where, "tool.kind: function or custom")
        if tool_kind == "custom":
            _need(isinstance(value.get("input", ""), str), where, "tool.input must be a string")
            payload: str = value.get("input", "")
        else:
            args = value.get("arguments", {})
            _need(isinstance(args, Mapping | str), where, "tool.arguments: a mapping or JSON text")
            payload = args if isinstance(args, str) else json.dumps(dict(args))
        data = {"name": value["name"], "kind": tool_kind, "payload": payload}
    elif kind == "error":
        spec = value if isinstance(value, Mapping) else {}
        _need(value is None or isinstance(value, Mapping), where, "error must be a mapping")
        status = spec.get("status")
        _need(status is None or isinstance(status, int), where, "error.status: an integer")
        times = spec.get("times", 1)
        _need(isinstance(times, int) and times >= 1, where, "error.times: integer >= 1")
        data = {
            "status": status,
            "message": spec.get("message"),
            "code": spec.get("code"),
            "disconnect": bool(spec.get("disconnect", False)),
            "times": times,
        }
    elif kind == "pause_ms":
        _need(isinstance(value, int) and value >= 0, where, "pause_ms: integer >= 0")
        data = {"ms": value}
    else:  # pragma: no cover - callers only pass known kinds
        raise ScriptError(f"{where}: unknown step kind {kind!r}")
    if kind in ("shell", "patch", "plan", "tool") and mods.get("call_id") is not None:
        data["call_id"] = str(mods["call_id"])
    return _Step(kind, data)


def _parse_mapping_steps(spec: Mapping[str, Any], where: str) -> list[_Step]:
    unknown = set(spec) - set(_STEP_ORDER) - _MODIFIERS - _REPLY_KEYS
    _need(
        not unknown,
        where,
        f"unknown key(s) {sorted(unknown)}; steps are {', '.join(_STEP_ORDER)}",
    )
    mods = {k: spec[k] for k in _MODIFIERS if k in spec}
    steps: list[_Step] = []
    for kind in _STEP_ORDER:
        if kind in spec:
            steps.append(_parse_step_value(kind, spec[kind], mods, where))
    if "text" not in spec and "chunks" in spec:
        steps.insert(
            sum(1 for s in steps if s.kind in ("error", "pause_ms", "reasoning")),
            _parse_step_value("text", None, mods, where),
        )
    return steps


def _parse_reply(raw: Any, where: str) -> _Reply:
    if isinstance(raw, str):
        return _Reply([_parse_step_value("text", raw, {}, where)], where=where)
    if isinstance(raw, list):
        steps: list[_Step] = []
        usage: dict[str, Any] | None = None
        for i, element in enumerate(raw):
            step_where = f"{where}, step {i + 1}"
            if isinstance(element, str):
                steps.append(_parse_step_value("text", element, {}, step_where))
            elif isinstance(element, Mapping):
                _need(
                    not ({"when_contains", "when_tool_output", "reply"} & set(element)),
                    step_where,
                    "when_*/reply belong on a reply mapping, not on a step",
                )
                steps += _parse_mapping_steps(element, step_where)
                if "usage" in element:
                    usage = _parse_usage(element["usage"], step_where)
            else:
                raise ScriptError(f"{step_where}: a step is a string or a mapping")
        return _Reply(steps, usage=usage, where=where)
    if isinstance(raw, Mapping):
        when_contains = raw.get("when_contains")
        when_tool_output = raw.get("when_tool_output")
        _need(
            when_contains is None or isinstance(when_contains, str),
            where,
            "when_contains must be a string",
        )
        _need(
            when_tool_output is None or isinstance(when_tool_output, bool | str),
            where,
            "when_tool_output must be true or a string",
        )
        if "reply" in raw:
            _need(
                set(raw) <= {"reply", "when_contains", "when_tool_output"},
                where,
                "a rule with `reply:` may only have when_* keys besides it",
            )
            reply = _parse_reply(raw["reply"], where)
        else:
            reply = _Reply(
                _parse_mapping_steps(raw, where),
                usage=_parse_usage(raw["usage"], where) if "usage" in raw else None,
                where=where,
            )
        reply.when_contains = when_contains
        reply.when_tool_output = when_tool_output
        return reply
    raise ScriptError(f"{where}: a reply is a string, a mapping of steps or a list of steps")


def _parse_usage(raw: Any, where: str) -> dict[str, Any]:
    _need(isinstance(raw, Mapping), where, "usage must be a mapping of token counts")
    for key, value in raw.items():
        _need(isinstance(value, int), where, f"usage.{key} must be an integer")
    return dict(raw)


def parse_script(data: Any, source: str = "<script>") -> _Script:
    script = _Script()
    if isinstance(data, Mapping):
        unknown = set(data) - {"replies", "rules", "default"}
        _need(not unknown, source, f"unknown top-level key(s) {sorted(unknown)}")
        replies = data.get("replies") or []
        rules = data.get("rules") or []
        _need(isinstance(replies, list), source, "replies must be a list")
        _need(isinstance(rules, list), source, "rules must be a list")
        for i, raw in enumerate(rules):
            rule = _parse_reply(raw, f"{source}: rule {i + 1}")
            _need(rule.is_rule, rule.where, "a rule needs when_contains or when_tool_output")
            script.rules.append(rule)
        if data.get("default") is not None:
            script.default = _parse_reply(data["default"], f"{source}: default")
    elif isinstance(data, list):
        replies = data
    elif data is None:
        replies = []
    else:
        raise ScriptError(f"{source}: the script must be a list of replies or a mapping")
    for i, raw in enumerate(replies):
        reply = _parse_reply(raw, f"{source}: reply {i + 1}")
        (script.rules if reply.is_rule else script.replies).append(reply)
    return script


def load_script(path: str | os.PathLike[str]) -> _Script:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"{p}: cannot read script: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ScriptError(f"{p}: not valid {p.suffix.lstrip('.') or 'YAML'}: {exc}") from None
    return parse_script(data, str(p))


# ---------------------------------------------------------------------------------------------
# Request inspection


def _last_user_text(items: Sequence[dict[str, Any]]) -> tuple[str | None, bool]:
    """(text of the latest user message, whether a tool output came after it)."""
    tool_output_after = False
    for item in reversed(items):
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind in _TOOL_OUTPUT_TYPES:
            tool_output_after = True
        elif kind == "message" and item.get("role") == "user":
            return content_text(item.get("content")), tool_output_after
    return None, tool_output_after


def _output_text(item: dict[str, Any]) -> str:
    output = item.get("output")
    if isinstance(output, str):
        return output
    if isinstance(output, dict):
        return content_text(output.get("content")) or json.dumps(output)
    return content_text(output)


def _tool_kinds(tools: Sequence[dict[str, Any]]) -> dict[str, str]:
    return {str(t.get("name")): str(t.get("type")) for t in tools if t.get("name")}


def _rule_matches(rule: _Reply, items: Sequence[dict[str, Any]]) -> bool:
    if rule.when_contains is not None:
        text, after = _last_user_text(items)
        if text is None or after or rule.when_contains not in text:
            return False
    if rule.when_tool_output is not None and rule.when_tool_output is not False:
        last = items[-1] if items else None
        if last is None or last.get("type") not in _TOOL_OUTPUT_TYPES:
            return False
        if isinstance(rule.when_tool_output, str) and rule.when_tool_output not in _output_text(
            last
        ):
            return False
    return True


# ---------------------------------------------------------------------------------------------
# The client


class ScriptedClient:
    """A ModelClient that answers from a script (see the module docstring)."""

    def __init__(self, script: str | os.PathLike[str] | list[Any] | dict[str, Any] | None) -> None:
        if script is None:
            self._script: _Script | None = None
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

    def _pick(self, items: Sequence[dict[str, Any]]) -> _Reply:
        script = self._script
        if script is None:
            text, _ = _last_user_text(items)
            return _Reply([_Step("text", {"text": f"Echo: {text or ''}", "chunks": None})])
        for rule in script.rules:
            if _rule_matches(rule, items):
                return rule
        while self._cursor < len(script.replies):
            reply = script.replies[self._cursor]
            if reply.live_steps() or not reply.steps:
                return reply
            # Only spent errors are left: this reply is done, the next one answers.
            self._cursor += 1
        if script.default is not None:
            return script.default
        return _Reply([_Step("text", {"text": EXHAUSTED_TEXT, "chunks": None})])

    async def aclose(self) -> None:
        return None

    def _structured(self, req: ModelRequest, schema: dict[str, Any]) -> _Reply:
        if self._script is not None:
            for rule in self._script.rules:
                if _rule_matches(rule, req.input):
                    return rule
        text, _ = _last_user_text(req.input)
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        value = schema_instance(schema, lines[-1] if lines else "", schema)
        body = json.dumps(value, ensure_ascii=False)
        return _Reply([_Step("text", {"text": body, "chunks": None})])

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

    def _error(self, step: _Step) -> ProviderError:
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

    def _tool_call(self, step: _Step, tools: Mapping[str, str]) -> ToolCall:
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

    def _usage(self, reply: _Reply, req: ModelRequest, out_chars: int) -> Usage:
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
