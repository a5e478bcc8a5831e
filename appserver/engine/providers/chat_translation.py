"""Chat Completions ↔ Responses API: the request translated one way, the stream the other.

Owns the history conversion (``responses_to_chat_messages``), the tool conversion
(``responses_tools_to_chat``), usage reading, and ``ChatStreamTranslator``: the state machine
that turns Chat Completions chunks (dicts) into the normalized events of ``events.py``, as if
the model had answered over the Responses API.
Must never: do I/O or import ``openai``: it is fed dicts and yields events; the HTTP round-trip
is ``chat_client``'s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .events import (
    Completed,
    MessageDone,
    MessageStarted,
    ModelEvent,
    ProviderError,
    ReasoningDone,
    ReasoningStarted,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    TextDelta,
    ToolCall,
    Usage,
    content_text,
    stream_disconnected,
)
from .json_fields import as_int, as_str

# ------------------------------------------------------------------------------------ requests


def _text_of(content: object) -> str:
    if content is None or isinstance(content, str | list):
        return content_text(content)
    return json.dumps(content)


def _chat_user_content(content: object) -> str | list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_of(content)
    parts: list[dict[str, Any]] = []
    has_image = False
    for p in content:
        if not isinstance(p, dict):
            continue
        if p.get("type") in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(p.get("text", ""))})
        elif p.get("type") == "input_image" and p.get("image_url"):
            has_image = True
            parts.append({"type": "image_url", "image_url": {"url": p["image_url"]}})
    if not has_image:
        # Plain strings are what every local server understands.
        return "".join(p["text"] for p in parts)
    return parts


def responses_to_chat_messages(
    instructions: str, items: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Convert a Responses-API history into Chat Completions messages.

    developer → system; function/custom tool calls → assistant `tool_calls` (consecutive calls
    share one assistant message, attached to the assistant text right before them); tool
    outputs → `tool` messages; reasoning items are dropped (chat has no place for them).
    """
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = str(item.get("role", "user"))
            if role == "developer":
                role = "system"
            if role == "assistant":
                messages.append({"role": "assistant", "content": _text_of(item.get("content"))})
            else:
                messages.append({"role": role, "content": _chat_user_content(item.get("content"))})
        elif kind in ("function_call", "custom_tool_call"):
            if kind == "function_call":
                arguments = item.get("arguments")
                args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
            else:
                args = json.dumps({"input": item.get("input", "")})
            call = {
                "id": str(item.get("call_id", "")),
                "type": "function",
                "function": {"name": str(item.get("name", "")), "arguments": args},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
                if not last.get("content"):
                    last["content"] = None
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            if isinstance(output, dict) and "content" in output:
                output = output["content"]
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("call_id", "")),
                    "content": _text_of(output),
                }
            )
    return messages


def responses_tools_to_chat(tools: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Function tools map 1:1; a custom (free-form) tool becomes a function taking one string
    argument `input`; other tool kinds (web_search, …) have no chat equivalent and are
    dropped."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        kind = tool.get("type")
        if kind == "function":
            fn: dict[str, Any] = {
                "name": tool.get("name", ""),
                "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            }
            if tool.get("description"):
                fn["description"] = tool["description"]
            out.append({"type": "function", "function": fn})
        elif kind == "custom":
            out.append(
                {
                    "type": "function",
                    "function": {
                        "name": tool.get("name", ""),
                        "description": tool.get("description", ""),
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "input": {"type": "string", "description": "The raw tool input."}
                            },
                            "required": ["input"],
                        },
                    },
                }
            )
    return out


def usage_from_chat(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = as_int(raw.get("prompt_tokens"))
    completion = as_int(raw.get("completion_tokens"))
    p_details = raw.get("prompt_tokens_details") or {}
    c_details = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=prompt,
        cached_input_tokens=as_int(p_details.get("cached_tokens")),
        output_tokens=completion,
        reasoning_output_tokens=as_int(c_details.get("reasoning_tokens")),
        total_tokens=as_int(raw.get("total_tokens")) or prompt + completion,
    )


# -------------------------------------------------------------------------------------- stream


@dataclass
class _CallSlot:
    """One tool call being assembled from its streamed pieces (keyed by its ``index``)."""

    id: str = ""
    name: str = ""
    arguments: str = ""


class ChatStreamTranslator:
    """Chat Completions chunks → normalized events, one round-trip per instance.

    ``feed`` takes each chunk and yields the events it implies as they happen: a side-channel
    thought (``reasoning_content`` / ``reasoning``) opens a reasoning item and streams as its
    summary; content closes that reasoning item, opens the message and streams as text; tool
    call pieces are only accumulated (chat streams them by index, split anywhere). ``finish``
    runs once the stream has ended: it fails if no choice ever had a ``finish_reason``, then
    closes the reasoning and the message, emits the tool calls in index order (a call to a
    custom tool gets its ``input`` back out of the one-string-argument function it was sent
    as) and ``Completed``.

    Item ids come from ``next_id(prefix)`` (the client's counter), drawn when first needed.
    """

    def __init__(self, next_id: Callable[[str], str], custom_tools: Collection[str]) -> None:
        self._next_id = next_id
        self._custom_tools = custom_tools
        self.response_id: str | None = None
        self.usage: Usage | None = None
        self.finished = False
        self._message_id: str | None = None
        self._text: list[str] = []
        self._reasoning_id: str | None = None
        self._reasoning: list[str] = []
        self._reasoning_done = False
        self._calls: dict[int, _CallSlot] = {}

    def feed(self, chunk: dict[str, Any]) -> Iterator[ModelEvent]:
        self.response_id = as_str(chunk.get("id")) or self.response_id
        if chunk.get("usage"):
            self.usage = usage_from_chat(chunk["usage"])
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finished = True
        delta = choice.get("delta") or {}
        # Local reasoning models stream their thoughts in a side field.
        thought = as_str(delta.get("reasoning_content")) or as_str(delta.get("reasoning"))
        if thought:
            yield from self._on_thought(thought)
        content = as_str(delta.get("content"))
        if content:
            yield from self._on_content(content)
        for tc in delta.get("tool_calls") or []:
            if isinstance(tc, dict):
                self._on_tool_call_piece(tc)

    def finish(self) -> Iterator[ModelEvent]:
        if not self.finished:
            raise ProviderError(
                "stream closed before the completion finished",
                retryable=True,
                codex_error_info=stream_disconnected(None),
            )
        yield from self._close_reasoning()
        if self._message_id is not None:
            yield self._message_done(self._message_id)
        for index in sorted(self._calls):
            yield self._tool_call(self._calls[index])
        yield Completed(self.response_id, self.usage)

    # ---------------------------------------------------------------- one method per kind

    def _on_thought(self, thought: str) -> Iterator[ModelEvent]:
        if self._reasoning_id is None:
            self._reasoning_id = self._next_id("rs")
            yield ReasoningStarted(self._reasoning_id)
            yield ReasoningSummaryPartAdded(self._reasoning_id, 0)
        self._reasoning.append(thought)
        yield ReasoningSummaryDelta(self._reasoning_id, 0, thought)

    def _on_content(self, content: str) -> Iterator[ModelEvent]:
        yield from self._close_reasoning()
        if self._message_id is None:
            self._message_id = self._next_id("msg")
            yield MessageStarted(self._message_id)
        self._text.append(content)
        yield TextDelta(self._message_id, content)

    def _on_tool_call_piece(self, tc: dict[str, Any]) -> None:
        slot = self._calls.setdefault(as_int(tc.get("index")), _CallSlot())
        slot.id = slot.id or (as_str(tc.get("id")) or "")
        fn = tc.get("function") or {}
        slot.name += as_str(fn.get("name")) or ""
        slot.arguments += as_str(fn.get("arguments")) or ""

    # ------------------------------------------------------------------------- closing

    def _close_reasoning(self) -> Iterator[ModelEvent]:
        if self._reasoning_id is None or self._reasoning_done:
            return
        self._reasoning_done = True
        joined = "".join(self._reasoning)
        raw = {
            "type": "reasoning",
            "id": self._reasoning_id,
            "summary": [{"type": "summary_text", "text": joined}],
        }
        yield ReasoningDone(self._reasoning_id, [joined], [], raw)

    def _message_done(self, message_id: str) -> MessageDone:
        full = "".join(self._text)
        raw_msg = {
            "type": "message",
            "role": "assistant",
            "id": message_id,
            "content": [{"type": "output_text", "text": full}],
        }
        return MessageDone(message_id, full, raw_msg)

    def _tool_call(self, slot: _CallSlot) -> ToolCall:
        call_id = slot.id or self._next_id("call")
        name = slot.name
        if name in self._custom_tools:
            try:
                parsed = json.loads(slot.arguments or "{}")
                tool_input = str(parsed.get("input", "")) if isinstance(parsed, dict) else ""
            except ValueError:
                tool_input = slot.arguments
            raw_call = {
                "type": "custom_tool_call",
                "call_id": call_id,
                "name": name,
                "input": tool_input,
            }
            return ToolCall(call_id, name, tool_input, "custom", raw_call)
        raw_call = {
            "type": "function_call",
            "call_id": call_id,
            "name": name,
            "arguments": slot.arguments,
        }
        return ToolCall(call_id, name, slot.arguments, "function", raw_call)
