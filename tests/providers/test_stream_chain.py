"""The model stream's generator chain is closed explicitly, and one bad SSE event is skipped.

Covers: after a stream read to ``response.completed``, one closed early by its consumer (a turn
interrupted) and one cut off, no generator started while reading it is left alive and
suspended. Reading through the ``openai`` package's stream iterator left eight (its own and
httpx's) referenced and suspended after every stream, for the event loop's shutdown to close
all at once: the "async generator already executing" warnings seen at in-process tests'
teardown. Also: a malformed event inside a valid stream (Responses and Chat Completions) is
skipped and the stream completes; an ``error`` object inside a stream still fails it.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref
from typing import Any

from appserver.engine.providers import ChatClient, MessageDone, ProviderError, ProviderInfo
from tests.providers.helpers import collect, collect_error
from tests.providers.test_responses_client import client_for, provider, request
from tests.support import mock_model as mm


async def _suspended(started: weakref.WeakSet[Any]) -> list[str]:
    """Generators started meanwhile that are still alive and suspended once garbage is
    collected and the loop has run the closes that collection scheduled."""
    gc.collect()
    for _ in range(5):
        await asyncio.sleep(0)
    return sorted(g.__qualname__ for g in started if g.ag_frame is not None)


async def test_no_stream_generator_is_left_suspended(mock: mm.MockModelServer) -> None:
    mock.add(
        mm.sse_text("read to the end"),
        mm.sse_text("closed early", chunks=["closed ", "early"]),
        mm.sse_truncated(mm.text_events("cut"), abort=True),
    )
    client = client_for(mock)
    started: weakref.WeakSet[Any] = weakref.WeakSet()
    hooks = sys.get_asyncgen_hooks()

    def firstiter(gen: Any) -> None:
        started.add(gen)
        if hooks.firstiter is not None:
            hooks.firstiter(gen)

    sys.set_asyncgen_hooks(firstiter=firstiter, finalizer=hooks.finalizer)
    try:
        await collect(client, request())
        assert await _suspended(started) == []
        stream = client.stream(request())
        async for _ in stream:
            break
        await stream.aclose()
        del stream
        assert await _suspended(started) == []
        await collect_error(client, request())
        assert await _suspended(started) == []
    finally:
        sys.set_asyncgen_hooks(*hooks)
        await client.aclose()


async def test_one_malformed_event_is_skipped(mock: mm.MockModelServer) -> None:
    mock.add(mm.sse_with_malformed_line(mm.text_events("whole anyway"), at=3))
    events = await collect(client_for(mock), request())
    done = [e for e in events if isinstance(e, MessageDone)]
    assert [d.text for d in done] == ["whole anyway"]


async def test_one_malformed_chat_chunk_is_skipped(mock: mm.MockModelServer) -> None:
    reply = mm.chat_text("chat whole", chunks=["chat ", "whole"])
    reply.parts.insert(2, b"data: {broken\n\n")
    mock.add(reply)
    info: ProviderInfo = provider(mock.base_url, wire_api="chat")
    events = await collect(ChatClient(info, env={}), request())
    assert [e.text for e in events if isinstance(e, MessageDone)] == ["chat whole"]


async def test_an_error_object_in_the_stream_fails_it(mock: mm.MockModelServer) -> None:
    reply: Any = mm.chat_text("unused")
    reply.parts.insert(
        1, b'data: {"error": {"message": "overloaded now", "code": "slow_down"}}\n\n'
    )
    mock.add(reply)
    info = provider(mock.base_url, wire_api="chat")
    _, err = await collect_error(ChatClient(info, env={}), request())
    assert isinstance(err, ProviderError)
    assert err.message == "overloaded now" and err.codex_error_info == "serverOverloaded"
