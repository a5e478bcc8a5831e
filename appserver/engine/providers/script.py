"""The script language of the scripted provider: its file format, step types and parsing.

Owns: the script file schema (below), reading it from JSON or YAML, its validation
(`ScriptError` names file, reply and step), the parsed form (`Script` of `Reply`s of `Step`s),
and what a rule matches in a request's input. How a script is replayed (ids, events, tool
adaptation, error replay, echo mode, structured output) is `scripted.ScriptedClient`'s.

Never: touch the network; read any file but the script; know about events or clients.

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
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .events import content_text

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


class ScriptError(ValueError):
    """The script file is malformed; the message says where."""


@dataclass
class Step:
    """One step of a reply: its kind (a key of the schema) and its validated data."""

    kind: str
    data: dict[str, Any]
    fired: int = 0  # errors only: how many calls this error already failed


@dataclass
class Reply:
    """One reply: its steps in run order, usage, and (for a rule) what it matches."""

    steps: list[Step]
    usage: dict[str, Any] | None = None
    when_contains: str | None = None
    when_tool_output: bool | str | None = None
    where: str = ""

    @property
    def is_rule(self) -> bool:
        return self.when_contains is not None or self.when_tool_output is not None

    def live_steps(self) -> list[Step]:
        return [s for s in self.steps if s.kind != "error" or s.fired < int(s.data.get("times", 1))]


@dataclass
class Script:
    """A parsed script: sequential replies, rules (never consumed) and the default."""

    replies: list[Reply] = field(default_factory=list)
    rules: list[Reply] = field(default_factory=list)
    default: Reply | None = None


# ---------------------------------------------------------------------------------------------
# Parsing


def _need(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise ScriptError(f"{where}: {msg}")


def _parse_step_value(kind: str, value: Any, mods: Mapping[str, Any], where: str) -> Step:
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
    return Step(kind, data)


def _parse_mapping_steps(spec: Mapping[str, Any], where: str) -> list[Step]:
    unknown = set(spec) - set(_STEP_ORDER) - _MODIFIERS - _REPLY_KEYS
    _need(
        not unknown,
        where,
        f"unknown key(s) {sorted(unknown)}; steps are {', '.join(_STEP_ORDER)}",
    )
    mods = {k: spec[k] for k in _MODIFIERS if k in spec}
    steps: list[Step] = []
    for kind in _STEP_ORDER:
        if kind in spec:
            steps.append(_parse_step_value(kind, spec[kind], mods, where))
    if "text" not in spec and "chunks" in spec:
        steps.insert(
            sum(1 for s in steps if s.kind in ("error", "pause_ms", "reasoning")),
            _parse_step_value("text", None, mods, where),
        )
    return steps


def _parse_reply(raw: Any, where: str) -> Reply:
    if isinstance(raw, str):
        return Reply([_parse_step_value("text", raw, {}, where)], where=where)
    if isinstance(raw, list):
        steps: list[Step] = []
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
        return Reply(steps, usage=usage, where=where)
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
            reply = Reply(
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


def parse_script(data: Any, source: str = "<script>") -> Script:
    script = Script()
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


def load_script(path: str | os.PathLike[str]) -> Script:
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
# Rule matching


def last_user_text(items: Sequence[dict[str, Any]]) -> tuple[str | None, bool]:
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


def rule_matches(rule: Reply, items: Sequence[dict[str, Any]]) -> bool:
    if rule.when_contains is not None:
        text, after = last_user_text(items)
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
