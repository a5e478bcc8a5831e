"""The Chat Completions stream state machine, driven with dicts in and events out (no I/O).

Covers: events are yielded as each chunk implies them (reasoning opened and streamed, closed by
the first content); tool call pieces split across chunks are assembled by index and emitted in
index order at the end, a custom tool's call carrying its ``input`` back; ids come from the
given counter, drawn only when needed; a stream without a finish reason is a retryable error.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from appserver.engine.providers import (
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
)
from appserver.engine.providers.chat_translation import ChatStreamTranslator


def counter() -> Any:
    numbers = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(numbers)}"


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "choices": [{"delta": delta, "finish_reason": finish}], **extra}


def test_each_chunk_yields_what_it_implies_and_finish_closes_in_order() -> None:
    t = ChatStreamTranslator(counter(), custom_tools={"apply_patch"})
    per_chunk: list[list[ModelEvent]] = [
        list(t.feed(chunk({"reasoning_content": "hm"}))),
        list(t.feed(chunk({"content": "Hi"}))),
        list(t.feed(chunk({"tool_calls": [{"index": 1, "function": {"name": "apply_"}}]}))),
        list(t.feed(chunk({"tool_calls": [{"index": 1, "function": {"name": "patch"}}]}))),
        list(t.feed(chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"in'}}]}))),
        list(
            t.feed(chunk({"tool_calls": [{"index": 1, "function": {"arguments": 'put": "x"}'}}]}))
        ),
        list(t.feed(chunk({"tool_calls": [{"index": 0, "id": "c0", "function": {"name": "f"}}]}))),
        list(t.feed(chunk({}, finish="tool_calls"))),
        list(
            t.feed(
                {
                    "id": "chatcmpl-1",
                    "choices": [],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                }
            )
        ),
    ]
    assert per_chunk[0] == [
        ReasoningStarted("rs_1"),
        ReasoningSummaryPartAdded("rs_1", 0),
        ReasoningSummaryDelta("rs_1", 0, "hm"),
    ]
    assert [type(e) for e in per_chunk[1]] == [ReasoningDone, MessageStarted, TextDelta]
    assert per_chunk[1][1:] == [MessageStarted("msg_2"), TextDelta("msg_2", "Hi")]
    assert all(events == [] for events in per_chunk[2:])

    end = list(t.finish())
    assert end[0] == MessageDone(
        "msg_2",
        "Hi",
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_2",
            "content": [{"type": "output_text", "text": "Hi"}],
        },
    )
    assert end[1] == ToolCall(
        "c0",
        "f",
        "",
        "function",
        {"type": "function_call", "call_id": "c0", "name": "f", "arguments": ""},
    )
    assert end[2] == ToolCall(
        "call_3",
        "apply_patch",
        "x",
        "custom",
        {"type": "custom_tool_call", "call_id": "call_3", "name": "apply_patch", "input": "x"},
    )
    assert end[3] == Completed("chatcmpl-1", Usage(input_tokens=3, output_tokens=2, total_tokens=5))


def test_a_stream_without_a_finish_reason_is_a_retryable_disconnect() -> None:
    t = ChatStreamTranslator(counter(), custom_tools=())
    assert list(t.feed(chunk({"content": "partial"})))
    with pytest.raises(ProviderError) as failure:
        list(t.finish())
    assert failure.value.retryable
