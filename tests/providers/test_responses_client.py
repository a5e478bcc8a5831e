"""ResponsesClient against the mock model server over real HTTP, through the openai package."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

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
    ReasoningSummaryPartAdded,
    ResponsesClient,
    ScriptedClient,
    TextDelta,
    ToolCall,
    Usage,
    make_client,
)
from appserver.engine.providers.responses_mapper import ResponsesStreamMapper
from tests.providers.helpers import WAIT, collect, collect_error
from tests.support.mock_model import (
    MockModelServer,
    closed_port,
    completed,
    created,
    http_error,
    sse,
    sse_custom_tool_call,
    sse_failed,
    sse_final_message,
    sse_function_call,
    sse_incomplete,
    sse_reasoning_then_text,
    sse_text,
    sse_truncated,
    sse_usage,
    text_events,
)


def provider(base_url: str, **kw: Any) -> ProviderInfo:
    return ProviderInfo(id="mock_provider", name="Mock", base_url=base_url, **kw)


def client_for(mock: MockModelServer, **kw: Any) -> ResponsesClient:
    return ResponsesClient(provider(mock.base_url, **kw), env={})


def request(**kw: Any) -> ModelRequest:
    base: dict[str, Any] = {
        "model": "mock-model",
        "instructions": "be brief",
        "input": [
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
        ],
    }
    base.update(kw)
    return ModelRequest(**base)


async def test_text_deltas_and_message_done(mock: MockModelServer) -> None:
    mock.add(sse_text("Hello world", chunks=["Hel", "lo ", "world"]))
    events = await collect(client_for(mock), request())
    assert events[0] == MessageStarted("msg_1")
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert [d.delta for d in deltas] == ["Hel", "lo ", "world"]
    assert all(d.item_id == "msg_1" for d in deltas)
    done = next(e for e in events if isinstance(e, MessageDone))
    assert done.text == "".join(d.delta for d in deltas) == "Hello world"
    assert done.raw_item["type"] == "message" and done.raw_item["role"] == "assistant"
    assert events[-1] == Completed("resp_1", None)


async def test_final_message_without_deltas_still_starts_the_item(mock: MockModelServer) -> None:
    mock.add(sse_final_message("Done"))
    events = await collect(client_for(mock), request())
    assert [type(e) for e in events] == [MessageStarted, MessageDone, Completed]
    assert isinstance(events[1], MessageDone) and events[1].text == "Done"


async def test_usage(mock: MockModelServer) -> None:
    usage = sse_usage(100, 20, cached_input_tokens=40, reasoning_output_tokens=7)
    mock.add(sse_text("ok", usage=usage, response_id="resp_9"))
    events = await collect(client_for(mock), request())
    assert events[-1] == Completed("resp_9", Usage(100, 40, 20, 7, 120))


async def test_reasoning_summary_events(mock: MockModelServer) -> None:
    mock.add(sse_reasoning_then_text(["First part", "Second"], "Answer", content=["raw"]))
    events = await collect(client_for(mock), request())
    kinds = [type(e) for e in events]
    assert kinds[:2] == [ReasoningStarted, ReasoningSummaryPartAdded]
    parts = [e for e in events if isinstance(e, ReasoningSummaryPartAdded)]
    assert [p.summary_index for p in parts] == [0, 1]
    deltas = [e for e in events if isinstance(e, ReasoningSummaryDelta)]
    assert "".join(d.delta for d in deltas if d.summary_index == 0) == "First part"
    done = next(e for e in events if isinstance(e, ReasoningDone))
    assert done.summary == ["First part", "Second"]
    assert done.content == ["raw"]
    assert done.raw_item["type"] == "reasoning"
    # reasoning closes before the message starts
    assert kinds.index(ReasoningDone) < kinds.index(MessageStarted)
    assert next(e for e in events if isinstance(e, MessageDone)).text == "Answer"


async def test_function_call(mock: MockModelServer) -> None:
    args = {"command": "echo hi", "workdir": None, "timeout_ms": 5000}
    mock.add(sse_function_call("call1", "shell_command", args))
    events = await collect(client_for(mock), request())
    call = events[0]
    assert isinstance(call, ToolCall)
    assert (call.call_id, call.name, call.kind) == ("call1", "shell_command", "function")
    assert json.loads(call.arguments) == args
    assert call.raw_item["type"] == "function_call"
    assert isinstance(events[-1], Completed)


async def test_custom_tool_call(mock: MockModelServer) -> None:
    patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch\n"
    mock.add(sse_custom_tool_call("call2", "apply_patch", patch))
    events = await collect(client_for(mock), request())
    call = events[0]
    assert isinstance(call, ToolCall)
    assert (call.call_id, call.name, call.kind, call.arguments) == (
        "call2",
        "apply_patch",
        "custom",
        patch,
    )
    assert call.raw_item == {
        "type": "custom_tool_call",
        "call_id": "call2",
        "name": "apply_patch",
        "input": patch,
    }


async def test_sparse_stream_is_normalized(mock: MockModelServer) -> None:
    # Deltas with no item id, no output_item.added and no output_item.done: the client still
    # yields Started → deltas → Done, with one synthetic id.
    mock.add(
        sse(
            [
                created(),
                {"type": "response.output_text.delta", "delta": "a"},
                {"type": "response.output_text.delta", "delta": "b"},
                {"type": "response.some_future_event", "x": 1},
                completed(),
            ]
        )
    )
    events = await collect(client_for(mock), request())
    assert [type(e) for e in events] == [
        MessageStarted,
        TextDelta,
        TextDelta,
        MessageDone,
        Completed,
    ]
    started, done = events[0], events[3]
    assert isinstance(started, MessageStarted) and isinstance(done, MessageDone)
    assert done.item_id == started.item_id and done.text == "ab"


@pytest.mark.parametrize(
    ("status", "retryable", "info"),
    [
        (500, True, "internalServerError"),
        (503, True, "serverOverloaded"),
        (429, True, "rateLimitExceeded"),
        (401, False, "unauthorized"),
        (400, False, "badRequest"),
    ],
)
async def test_http_errors(mock: MockModelServer, status: int, retryable: bool, info: str) -> None:
    mock.add(http_error(status))
    events, err = await collect_error(client_for(mock), request())
    assert events == []
    assert err.http_status == status
    assert err.retryable is retryable
    assert err.codex_error_info == info
    # exactly one attempt: the openai package must not retry behind the engine's back
    assert len(mock.model_requests()) == 1


async def test_error_codes_and_retry_after(mock: MockModelServer) -> None:
    body = {"error": {"code": "context_length_exceeded", "message": "too long"}}
    mock.add(http_error(400, body), http_error(429, headers={"retry-after": "2"}))
    _, err = await collect_error(client_for(mock), request())
    assert err.codex_error_info == "contextWindowExceeded" and not err.retryable
    assert "too long" in err.message
    _, err = await collect_error(client_for(mock), request())
    assert err.retry_after_s == 2.0 and err.retryable


async def test_quota_429_is_final(mock: MockModelServer) -> None:
    mock.add(http_error(429, {"error": {"code": "insufficient_quota", "message": "pay up"}}))
    _, err = await collect_error(client_for(mock), request())
    assert err.codex_error_info == "usageLimitExceeded" and not err.retryable


@pytest.mark.parametrize("abort", [False, True])
async def test_truncated_stream_is_retryable_disconnect(mock: MockModelServer, abort: bool) -> None:
    mock.add(sse_truncated(text_events("partial", chunks=["par", "tial"]), abort=abort))
    events, err = await collect_error(client_for(mock), request())
    assert [e.delta for e in events if isinstance(e, TextDelta)] == ["par", "tial"]
    assert err.retryable
    assert err.codex_error_info == {"responseStreamDisconnected": {"httpStatusCode": None}}


async def test_response_failed_and_incomplete(mock: MockModelServer) -> None:
    mock.add(
        sse_failed("server_error", "upstream broke"),
        sse_failed("context_length_exceeded", "too long"),
        sse_incomplete("max_output_tokens"),
    )
    client = client_for(mock)
    _, err = await collect_error(client, request())
    assert err.retryable and err.message == "upstream broke"
    _, err = await collect_error(client, request())
    assert not err.retryable and err.codex_error_info == "contextWindowExceeded"
    _, err = await collect_error(client, request())
    assert err.retryable and "max_output_tokens" in err.message


async def test_connection_refused() -> None:
    client = ResponsesClient(provider(f"http://127.0.0.1:{closed_port()}/v1"), env={})
    events, err = await collect_error(client, request())
    assert events == []
    assert err.retryable
    assert err.codex_error_info == {"httpConnectionFailed": {"httpStatusCode": None}}


async def test_idle_timeout_between_events(mock: MockModelServer) -> None:
    reply = sse_text("never finishes")
    hold = reply.hold_before(2)  # after response.created + output_item.added
    mock.add(reply)
    client = client_for(mock, stream_idle_timeout_ms=200)
    events, err = await collect_error(client, request())
    assert hold.reached.is_set()
    assert events == [MessageStarted("msg_1")]
    assert err.retryable and "idle" in err.message
    hold.release.set()


async def test_closing_the_stream_mid_way_releases_the_connection(mock: MockModelServer) -> None:
    reply = sse_text("abcdef", chunks=["ab", "cd", "ef"])
    hold = reply.hold_before(3)  # after the first delta
    mock.add(reply, sse_text("second"))
    client = client_for(mock)
    stream = client.stream(request())
    async with asyncio.timeout(WAIT):
        first = await anext(stream)
        second = await anext(stream)
        assert [first, second] == [MessageStarted("msg_1"), TextDelta("msg_1", "ab")]
        await stream.aclose()  # the engine interrupting the turn
    hold.release.set()
    events = await collect(client, request())
    assert next(e for e in events if isinstance(e, MessageDone)).text == "second"


async def test_missing_env_key_fails_before_any_request(mock: MockModelServer) -> None:
    info = provider(mock.base_url, env_key="MOCK_API_KEY", env_key_instructions="Get one.")
    client = ResponsesClient(info, env={"MOCK_API_KEY": "  "})
    events, err = await collect_error(client, request())
    assert events == [] and mock.requests == []
    assert not err.retryable and err.codex_error_info == "unauthorized"
    assert "MOCK_API_KEY" in err.message and "Get one." in err.message


async def test_api_key_header(mock: MockModelServer) -> None:
    mock.add(sse_text("ok"))
    info = provider(mock.base_url, env_key="MOCK_API_KEY")
    client = ResponsesClient(info, env={"MOCK_API_KEY": "sk-dummy-mock-key"})
    await collect(client, request())
    assert mock.requests[0].header("authorization") == "Bearer sk-dummy-mock-key"
    assert "sk-dummy-mock-key" not in repr(client)


async def test_keyless_provider_never_leaks_ambient_openai_credentials(
    mock: MockModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-must-not-leak")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-must-not-leak")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-must-not-leak")
    mock.add(sse_text("ok"))
    await collect(ResponsesClient(provider(mock.base_url)), request())
    sent = json.dumps(mock.requests[0].headers)
    assert "authorization" not in mock.requests[0].headers
    assert "must-not-leak" not in sent


async def test_query_params_and_headers_reach_the_server(mock: MockModelServer) -> None:
    mock.add(sse_text("ok"))
    info = provider(
        mock.base_url,
        query_params={"api-version": "2025-04-01-preview"},
        http_headers={"X-Foo": "bar"},
        env_http_headers={"X-Bar": "BAR_ENV", "X-Unset": "UNSET_ENV"},
    )
    client = ResponsesClient(info, env={"BAR_ENV": "baz"})
    req = request(headers={"originator": "codex_tests", "session_id": "thread-1"})
    await collect(client, req)
    rec = mock.requests[0]
    assert rec.path == "/v1/responses"
    assert rec.query == {"api-version": "2025-04-01-preview"}
    assert rec.header("x-foo") == "bar"
    assert rec.header("x-bar") == "baz"
    assert rec.header("x-unset") is None
    assert rec.header("originator") == "codex_tests"
    assert rec.header("session_id") == "thread-1"
    assert rec.header("accept") == "text/event-stream"


async def test_request_body(mock: MockModelServer) -> None:
    mock.add(sse_text("ok"))
    tools = [
        {
            "type": "function",
            "name": "shell_command",
            "description": "run",
            "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
        },
        {"type": "custom", "name": "apply_patch", "description": "patch"},
    ]
    req = request(
        tools=tools,
        reasoning_effort="high",
        reasoning_summary="auto",
        prompt_cache_key="thread-1",
        parallel_tool_calls=True,
        extra_body={"service_tier": "flex"},
    )
    await collect(client_for(mock), req)
    body = mock.requests[0].body
    assert body["model"] == "mock-model"
    assert body["instructions"] == "be brief"
    assert body["stream"] is True and body["store"] is False
    assert body["tools"] == tools and body["tool_choice"] == "auto"
    assert body["parallel_tool_calls"] is True
    assert body["reasoning"] == {"effort": "high", "summary": "auto"}
    assert body["include"] == ["reasoning.encrypted_content"]
    assert body["prompt_cache_key"] == "thread-1"
    assert body["service_tier"] == "flex"
    assert body["input"] == req.input


async def test_history_is_sent_in_full_each_round_trip(mock: MockModelServer) -> None:
    mock.add(
        sse_function_call("call1", "shell_command", {"command": "echo hi"}),
        sse_text("done"),
    )
    client = client_for(mock)
    history: list[dict[str, Any]] = list(request().input)
    first = await collect(client, request(input=list(history)))
    for ev in first:
        if isinstance(ev, ToolCall):
            history.append(ev.raw_item)
            history.append(
                {"type": "function_call_output", "call_id": ev.call_id, "output": "hi\n"}
            )
    second = await collect(client, request(input=list(history)))
    done = next(e for e in second if isinstance(e, MessageDone))
    history.append(done.raw_item)

    bodies = [r.body for r in mock.model_requests()]
    assert len(bodies) == 2
    assert bodies[0]["input"] == history[:1]
    assert [i.get("type") for i in bodies[1]["input"]] == [
        "message",
        "function_call",
        "function_call_output",
    ]
    assert bodies[1]["input"][1]["call_id"] == "call1"
    assert bodies[1]["input"][2] == {
        "type": "function_call_output",
        "call_id": "call1",
        "output": "hi\n",
    }


async def test_item_ids_and_nulls_are_stripped_from_input(mock: MockModelServer) -> None:
    mock.add(sse_text("ok"))
    items = [
        {
            "type": "message",
            "role": "assistant",
            "id": "msg_1",
            "content": [{"type": "output_text", "text": "x"}],
            "phase": None,
        },
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "enc"},
        {"type": "item_reference", "id": "keep_me"},
    ]
    await collect(client_for(mock), request(input=items))
    sent = mock.requests[0].body["input"]
    assert sent[0] == {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "x"}],
    }
    assert sent[1] == {"type": "reasoning", "summary": [], "encrypted_content": "enc"}
    assert sent[2] == {"type": "item_reference", "id": "keep_me"}


def test_make_client_dispatches_on_wire_api(tmp_path: Any) -> None:
    assert isinstance(make_client(provider("http://x/v1")), ResponsesClient)
    assert isinstance(make_client(provider("http://x/v1", wire_api="chat")), ChatClient)
    scripted = ProviderInfo(id="s", name="s", wire_api="scripted")
    assert isinstance(make_client(scripted), ScriptedClient)


def test_mapper_rejects_error_event() -> None:
    mapper = ResponsesStreamMapper()
    with pytest.raises(Exception) as info:
        mapper.feed({"type": "error", "code": "insufficient_quota", "message": "quota"})
    assert getattr(info.value, "codex_error_info", None) == "usageLimitExceeded"
