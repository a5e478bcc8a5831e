"""``QueueSink``'s ``MERGE_THEN_DROP`` policy (the in-process client's queue), no I/O: when full
a delta merges into the last queued delta of its item, other droppable notifications are
dropped and a ``LAGGED`` marker stands exactly where the gap is, server requests are queued
past the bound and guaranteed notifications wait for room."""

from __future__ import annotations

import asyncio
from typing import Any

from appserver.core import outbound
from appserver.core.outbound import Kind, OutboundMessage
from appserver.core.sinks import Policy, QueueSink

IDS = {"threadId": "t", "turnId": "u", "itemId": "i"}


def _delta(text: str) -> OutboundMessage:
    return outbound.notification("item/agentMessage/delta", {**IDS, "delta": text})


def _read(sink: QueueSink) -> list[tuple[Kind, Any]]:
    out: list[tuple[Kind, Any]] = []
    while (msg := sink.take_nowait()) is not None:
        payload = msg.payload
        if msg.kind is Kind.LAGGED:
            out.append((msg.kind, payload["skipped"]))
        elif msg.kind is Kind.SERVER_REQUEST:
            out.append((msg.kind, payload["id"]))
        else:
            out.append((msg.kind, payload["params"].get("delta", payload["method"])))
    return out


async def test_full_queue_merges_then_drops_and_marks_the_gap() -> None:
    sink = QueueSink(Policy.MERGE_THEN_DROP, max_messages=2)
    for text in ("a", "b", "c"):
        assert sink.offer(_delta(text))  # "c" merges into "b": the queue is full
    assert sink.offer(outbound.notification("thread/tokenUsage/updated", {"threadId": "t"}))
    assert sink.offer(_delta("d"))  # dropped: merging across the gap would misplace it
    assert sink.offer(outbound.server_request(7, "x/ask", {}))  # past the bound, never lost
    completed = outbound.notification("turn/completed", {"threadId": "t"})
    assert sink.offer(completed) is False  # guaranteed: must wait for room
    assert (sink.merged, sink.dropped) == (1, 2)
    waiting = asyncio.ensure_future(sink.send(completed))
    await asyncio.sleep(0)
    assert not waiting.done()
    assert _read(sink) == [
        (Kind.NOTIFICATION, "a"),
        (Kind.NOTIFICATION, "bc"),
        (Kind.LAGGED, 2),
        (Kind.SERVER_REQUEST, 7),
    ]
    await asyncio.wait_for(waiting, 5)
    assert _read(sink) == [(Kind.NOTIFICATION, "turn/completed")]


async def test_a_gap_at_the_end_is_reported_once_everything_is_read() -> None:
    sink = QueueSink(Policy.MERGE_THEN_DROP, max_messages=1)
    assert sink.offer(outbound.notification("thread/status/changed", {"n": 1}))
    assert sink.offer(outbound.notification("thread/status/changed", {"n": 2}))  # dropped
    batch = await asyncio.wait_for(sink.next_batch(1), 5)
    assert batch[0].payload["params"] == {"n": 1}
    batch = await asyncio.wait_for(sink.next_batch(1), 5)
    assert (batch[0].kind, batch[0].payload) == (Kind.LAGGED, {"skipped": 1})
    assert sink.take_nowait() is None
    sink.close()
    assert await asyncio.wait_for(sink.next_batch(1), 5) == []
