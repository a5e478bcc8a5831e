"""ChatClient (wire_api = "chat") against the mock server, plus the history conversion."""

from __future__ import annotations

import json
from typing import Any

from appserver.engine.providers import (
    ChatClient,
    Completed,
    MessageDone,
    MessageStarted,
    ModelRequest,
    ProviderInfo,
    ReasoningDone,
    ReasoningStarted,
    ReasoningSummaryDelta,
    TextDelta,
    ToolCall,
    Usage,
)
from appserver.engine.providers.chat_translation import (
    responses_to_chat_messages,
    responses_tools_to_chat,
)
from tests.providers.helpers import collect, collect_error
from tests.support.mock_model import (
    MockModelServer,
    Reply,
    chat_text,
    chat_tool_call,
    chat_tool_calls,
    chat_truncated,
    chat_usage,
    encode_chat,
    http_error,
)


def client_for(mock: MockModelServer, **kw: Any) -> ChatClient:
    info = ProviderInfo(id="local", name="Local", base_url=mock.base_url, wire_api="chat", **kw)
    return ChatClient(info, env={})


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def request(**kw: Any) -> ModelRequest:
    base: dict[str, Any] = {"model": "llama", "instructions": "sys", "input": [user("hi")]}
    base.update(kw)
    return ModelRequest(**base)


async def test_chat_text(mock: MockModelServer) -> None:
    mock.add(chat_text("Hello there", chunks=["Hel", "lo ", "there"], usage=chat_usage(9, 3)))
    events = await collect(client_for(mock), request())
    assert isinstance(events[0], MessageStarted)
    deltas = [e.delta for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Hel", "lo ", "there"]
    done = next(e for e in events if isinstance(e, MessageDone))
    assert done.text == "Hello there"
    assert done.raw_item["content"] == [{"type": "output_text", "text": "Hello there"}]
    assert events[-1] == Completed("chatcmpl-1", Usage(9, 0, 3, 0, 12))
    rec = mock.requests[0]
    assert rec.path == "/v1/chat/completions"
    assert rec.body["stream"] is True
    assert rec.body["stream_options"] == {"include_usage": True}
    assert rec.body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
    ]


async def test_chat_tool_call_arguments_are_accumulated(mock: MockModelServer) -> None:
    args = {"command": "ls -la", "workdir": "/tmp"}
    mock.add(chat_tool_call("call_a", "shell_command", args, text="Let me look."))
    tools = [{"type": "function", "name": "shell_command", "parameters": {"type": "object"}}]
    events = await collect(client_for(mock), request(tools=tools))
    assert next(e for e in events if isinstance(e, MessageDone)).text == "Let me look."
    call = next(e for e in events if isinstance(e, ToolCall))
    assert (call.call_id, call.name, call.kind) == ("call_a", "shell_command", "function")
    assert json.loads(call.arguments) == args
    assert call.raw_item["type"] == "function_call"
    assert isinstance(events[-1], Completed)
    body = mock.requests[0].body
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "shell_command", "parameters": {"type": "object"}},
        }
    ]


async def test_chat_custom_tool_round_trips_as_custom_call(mock: MockModelServer) -> None:
    patch = "*** Begin Patch\n*** End Patch\n"
    mock.add(
        chat_tool_calls(
            [("c1", "apply_patch", {"input": patch}), ("c2", "update_plan", {"plan": []})]
        )
    )
    tools = [
        {"type": "custom", "name": "apply_patch", "description": "edit files"},
        {"type": "function", "name": "update_plan", "parameters": {"type": "object"}},
    ]
    events = await collect(client_for(mock), request(tools=tools))
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert [(c.name, c.kind) for c in calls] == [
        ("apply_patch", "custom"),
        ("update_plan", "function"),
    ]
    assert calls[0].arguments == patch
    assert calls[0].raw_item == {
        "type": "custom_tool_call",
        "call_id": "c1",
        "name": "apply_patch",
        "input": patch,
    }
    sent_tool = mock.requests[0].body["tools"][0]["function"]
    assert sent_tool["name"] == "apply_patch"
    assert sent_tool["parameters"]["required"] == ["input"]


async def test_chat_reasoning_content(mock: MockModelServer) -> None:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    parts = encode_chat(
        [
            chunk({"role": "assistant", "reasoning_content": "think "}),
            chunk({"reasoning_content": "hard"}),
            chunk({"content": "answer"}),
            chunk({}, "stop"),
        ]
    )
    mock.add(Reply(route="chat", parts=list(parts)))
    events = await collect(client_for(mock), request())
    kinds = [type(e) for e in events]
    assert kinds[0] is ReasoningStarted
    assert "".join(e.delta for e in events if isinstance(e, ReasoningSummaryDelta)) == "think hard"
    done = next(e for e in events if isinstance(e, ReasoningDone))
    assert done.summary == ["think hard"]
    assert kinds.index(ReasoningDone) < kinds.index(MessageStarted)


async def test_chat_truncated_is_retryable(mock: MockModelServer) -> None:
    mock.add(chat_truncated("part"))
    events, err = await collect_error(client_for(mock), request())
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ["part"]
    assert err.retryable
    assert err.codex_error_info == {"responseStreamDisconnected": {"httpStatusCode": None}}


async def test_chat_http_error(mock: MockModelServer) -> None:
    mock.add(http_error(500, route="chat"))
    _, err = await collect_error(client_for(mock), request())
    assert err.http_status == 500 and err.retryable


async def test_chat_history_is_converted(mock: MockModelServer) -> None:
    mock.add(chat_text("ok"))
    history = [
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "dev"}],
        },
        user("list files"),
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "output_text", "text": "Sure."}],
        },
        {"type": "function_call", "call_id": "c1", "name": "shell_command", "arguments": "{}"},
        {"type": "custom_tool_call", "call_id": "c2", "name": "apply_patch", "input": "P"},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call_output", "call_id": "c1", "output": "a\nb\n"},
        {
            "type": "custom_tool_call_output",
            "call_id": "c2",
            "output": [{"type": "input_text", "text": "patched"}],
        },
    ]
    await collect(client_for(mock), request(input=history))
    assert mock.requests[0].body["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "system", "content": "dev"},
        {"role": "user", "content": "list files"},
        {
            "role": "assistant",
            "content": "Sure.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "shell_command", "arguments": "{}"},
                },
                {
                    "id": "c2",
                    "type": "function",
                    "function": {"name": "apply_patch", "arguments": '{"input": "P"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "a\nb\n"},
        {"role": "tool", "tool_call_id": "c2", "content": "patched"},
    ]


def test_conversion_helpers_edge_cases() -> None:
    msgs = responses_to_chat_messages(
        "",
        [
            {"role": "user", "content": "plain string"},
            {"type": "function_call", "call_id": "x", "name": "f", "arguments": {"a": 1}},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA"},
                ],
            },
        ],
    )
    assert msgs[0] == {"role": "user", "content": "plain string"}
    assert msgs[1]["role"] == "assistant" and msgs[1]["content"] is None
    assert msgs[1]["tool_calls"][0]["function"]["arguments"] == '{"a": 1}'
    assert msgs[2]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,AA"},
    }
    assert responses_tools_to_chat([{"type": "web_search"}]) == []


async def test_chat_output_schema_is_a_strict_response_format(mock: MockModelServer) -> None:
    schema = {"type": "object", "properties": {"title": {"type": "string"}}}
    mock.add(chat_text('{"title": "x"}'))
    await collect(client_for(mock), request(output_schema=schema))
    assert mock.requests[0].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "codex_output_schema", "schema": schema, "strict": True},
    }
