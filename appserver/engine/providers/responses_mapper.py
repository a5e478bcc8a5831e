"""Responses-API stream events (decoded JSON dicts) → the normalized events of ``events.py``.

Owns ``ResponsesStreamMapper`` (the item bookkeeping that turns a possibly sparse stream into
well-formed Started/Delta/Done sequences), usage reading, and the errors a stream reports
in-band (``response.failed``, ``response.incomplete``, ``error``).
Must never: do I/O or import ``openai``: it is fed dicts, so tests and other transports can
drive it directly.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from .events import (
    Completed,
    MessageDone,
    MessageStarted,
    ModelEvent,
    ProviderError,
    ReasoningContentDelta,
    ReasoningDone,
    ReasoningStarted,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    TextDelta,
    ToolCall,
    Usage,
    error_for_code,
    stream_disconnected,
)
from .json_fields import as_int, as_str


def usage_from_responses(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    in_details = raw.get("input_tokens_details") or {}
    out_details = raw.get("output_tokens_details") or {}
    input_tokens = as_int(raw.get("input_tokens"))
    output_tokens = as_int(raw.get("output_tokens"))
    return Usage(
        input_tokens=input_tokens,
        cached_input_tokens=as_int(in_details.get("cached_tokens")),
        output_tokens=output_tokens,
        reasoning_output_tokens=as_int(out_details.get("reasoning_tokens")),
        total_tokens=as_int(raw.get("total_tokens")) or input_tokens + output_tokens,
    )


def _failed_error(response: object, default: str) -> ProviderError:
    error = response.get("error") if isinstance(response, dict) else None
    code = as_str(error.get("code")) if isinstance(error, dict) else None
    message = (as_str(error.get("message")) if isinstance(error, dict) else None) or default
    by_code = error_for_code(code, message)
    if by_code is not None:
        return by_code
    if code == "rate_limit_exceeded":
        return ProviderError(message, retryable=True, codex_error_info="rateLimitExceeded")
    # Codex treats any other failed response as a retryable stream error.
    return ProviderError(message, retryable=True, codex_error_info=stream_disconnected(None))


class ResponsesStreamMapper:
    """Turns Responses-API stream events (dicts) into normalized events.

    Normalizes sparse streams: a delta for an item that was never `added` first yields the
    matching *Started event; a missing item id gets a synthetic one; a message whose `done`
    item has no content gets the text of its deltas; and items still open at
    `response.completed` (deltas but no `output_item.done`) are closed from their deltas, so
    every *Started is always followed by its *Done.
    """

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.completed = False
        self._started: set[str] = set()
        self._parts: set[tuple[str, int]] = set()
        self._message_id: str | None = None
        self._reasoning_id: str | None = None
        self._texts: dict[str, list[str]] = {}
        self._summaries: dict[str, dict[int, list[str]]] = {}
        # Started but not yet done, in start order (dicts keep insertion order).
        self._open: dict[str, Literal["message", "reasoning"]] = {}
        self._synthetic = 0

    def _synth(self, prefix: str) -> str:
        self._synthetic += 1
        return f"{prefix}_synthetic_{self._synthetic}"

    def _message(self, item_id: str | None, out: list[ModelEvent]) -> str:
        item_id = item_id or self._message_id or self._synth("msg")
        if item_id not in self._started:
            self._started.add(item_id)
            self._open[item_id] = "message"
            out.append(MessageStarted(item_id))
        self._message_id = item_id
        return item_id

    def _reasoning(self, item_id: str | None, out: list[ModelEvent]) -> str:
        item_id = item_id or self._reasoning_id or self._synth("rs")
        if item_id not in self._started:
            self._started.add(item_id)
            self._open[item_id] = "reasoning"
            out.append(ReasoningStarted(item_id))
        self._reasoning_id = item_id
        return item_id

    def _part(self, item_id: str, index: int, out: list[ModelEvent]) -> None:
        if (item_id, index) not in self._parts:
            self._parts.add((item_id, index))
            out.append(ReasoningSummaryPartAdded(item_id, index))

    def feed(self, ev: dict[str, Any]) -> list[ModelEvent]:
        kind = ev.get("type")
        out: list[ModelEvent] = []
        if kind == "response.created":
            response = ev.get("response")
            if isinstance(response, dict):
                self.response_id = as_str(response.get("id")) or self.response_id
        elif kind == "response.output_item.added":
            item = ev.get("item")
            if isinstance(item, dict):
                if item.get("type") == "message":
                    self._message(as_str(item.get("id")), out)
                elif item.get("type") == "reasoning":
                    self._reasoning(as_str(item.get("id")), out)
        elif kind == "response.output_text.delta":
            delta = as_str(ev.get("delta")) or ""
            item_id = self._message(as_str(ev.get("item_id")), out)
            self._texts.setdefault(item_id, []).append(delta)
            out.append(TextDelta(item_id, delta))
        elif kind == "response.reasoning_summary_part.added":
            item_id = self._reasoning(as_str(ev.get("item_id")), out)
            self._part(item_id, as_int(ev.get("summary_index")), out)
        elif kind == "response.reasoning_summary_text.delta":
            item_id = self._reasoning(as_str(ev.get("item_id")), out)
            index = as_int(ev.get("summary_index"))
            self._part(item_id, index, out)
            delta = as_str(ev.get("delta")) or ""
            self._summaries.setdefault(item_id, {}).setdefault(index, []).append(delta)
            out.append(ReasoningSummaryDelta(item_id, index, delta))
        elif kind == "response.reasoning_text.delta":
            item_id = self._reasoning(as_str(ev.get("item_id")), out)
            index = as_int(ev.get("content_index"))
            out.append(ReasoningContentDelta(item_id, index, as_str(ev.get("delta")) or ""))
        elif kind == "response.output_item.done":
            item = ev.get("item")
            if isinstance(item, dict):
                self._item_done(item, out)
        elif kind == "response.completed":
            response = ev.get("response")
            response = response if isinstance(response, dict) else {}
            self.completed = True
            self._close_open_items(out)
            out.append(
                Completed(
                    as_str(response.get("id")) or self.response_id,
                    usage_from_responses(response.get("usage")),
                )
            )
        elif kind == "response.failed":
            raise _failed_error(ev.get("response"), "model response failed")
        elif kind == "response.incomplete":
            response = ev.get("response")
            details = response.get("incomplete_details") if isinstance(response, dict) else None
            reason = as_str(details.get("reason")) if isinstance(details, dict) else None
            raise ProviderError(
                f"Incomplete response returned, reason: {reason or 'unknown'}",
                retryable=True,
                codex_error_info=stream_disconnected(None),
            )
        elif kind == "error":
            raise _failed_error({"error": ev}, "model stream error")
        # Everything else (content_part.*, output_text.done, web_search_call.*, …) carries
        # nothing the engine needs beyond what output_item.done repeats.
        return out

    def _close_open_items(self, out: list[ModelEvent]) -> None:
        for item_id, kind in list(self._open.items()):
            if kind == "message":
                text = "".join(self._texts.pop(item_id, []))
                raw = {
                    "type": "message",
                    "role": "assistant",
                    "id": item_id,
                    "content": [{"type": "output_text", "text": text}],
                }
                out.append(MessageDone(item_id, text, raw))
            else:
                parts = self._summaries.pop(item_id, {})
                summary = ["".join(parts[i]) for i in sorted(parts)]
                raw = {
                    "type": "reasoning",
                    "id": item_id,
                    "summary": [{"type": "summary_text", "text": t} for t in summary],
                }
                out.append(ReasoningDone(item_id, summary, [], raw))
        self._open.clear()

    def _item_done(self, item: dict[str, Any], out: list[ModelEvent]) -> None:
        kind = item.get("type")
        if kind == "message":
            if item.get("role", "assistant") != "assistant":
                return
            item_id = self._message(as_str(item.get("id")), out)
            content = item.get("content")
            parts = [
                p["text"]
                for p in (content if isinstance(content, list) else [])
                if isinstance(p, dict) and p.get("type") == "output_text" and "text" in p
            ]
            deltas = self._texts.pop(item_id, [])
            text = "".join(parts) if parts else "".join(deltas)
            self._open.pop(item_id, None)
            raw = dict(item)
            raw.setdefault("role", "assistant")
            raw.setdefault("id", item_id)
            if not parts:
                raw["content"] = [{"type": "output_text", "text": text}]
            self._message_id = None
            out.append(MessageDone(item_id, text, raw))
        elif kind == "reasoning":
            item_id = self._reasoning(as_str(item.get("id")), out)
            self._open.pop(item_id, None)
            self._summaries.pop(item_id, None)
            summary = item.get("summary")
            content = item.get("content")
            out.append(
                ReasoningDone(
                    item_id,
                    [
                        str(p.get("text", ""))
                        for p in (summary if isinstance(summary, list) else [])
                        if isinstance(p, dict)
                    ],
                    [
                        str(p.get("text", ""))
                        for p in (content if isinstance(content, list) else [])
                        if isinstance(p, dict)
                    ],
                    {**item, "id": item_id},
                )
            )
            self._reasoning_id = None
        elif kind in ("function_call", "custom_tool_call"):
            call_id = as_str(item.get("call_id")) or as_str(item.get("id")) or self._synth("call")
            name = as_str(item.get("name")) or ""
            if kind == "function_call":
                args = item.get("arguments")
                arguments = args if isinstance(args, str) else json.dumps(args or {})
                out.append(ToolCall(call_id, name, arguments, "function", dict(item)))
            else:
                out.append(
                    ToolCall(call_id, name, as_str(item.get("input")) or "", "custom", dict(item))
                )
