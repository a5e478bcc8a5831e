"""The in-process transport's own contract, driven through ``start_in_process``.

Covers: a typed round trip; ``WouldBlock`` on a full client queue; a duplicate in-flight
request id refused with -32600; ``Lagged(skipped=n)`` markers that account for every dropped
notification exactly where the gap is; deltas merged before anything is dropped; guaranteed
notifications and server requests never dropped on a full queue; a bounded shutdown.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from appserver.core.processor import RequestContext
from appserver.protocol.errors import INTERNAL_ERROR, RpcError
from appserver.protocol.registry import Scope
from appserver.protocol.runtime_params import GetAccountParams
from appserver.server.app import start_in_process
from appserver.transports.in_process import (
    SHUTDOWN_TIMEOUT,
    Event,
    InProcessClientHandle,
    Lagged,
    ServerNotification,
    ServerRequest,
    WouldBlock,
)

TIMEOUT = 10.0
QUIET = ["configWarning"]  # keep the startup warning out of the event queue


@pytest.fixture
async def client(home: Path) -> AsyncIterator[InProcessClientHandle]:
    handle = await start_in_process(home, opt_out_notification_methods=QUIET)
    try:
        yield handle
    finally:
        await asyncio.wait_for(handle.shutdown(), TIMEOUT)


async def small_client(home: Path, capacity: int) -> InProcessClientHandle:
    return await start_in_process(
        home, channel_capacity=capacity, opt_out_notification_methods=QUIET
    )


async def drain_events(handle: InProcessClientHandle, count: int) -> list[Event]:
    return [await handle.next_event(timeout=TIMEOUT) for _ in range(count)]


async def test_typed_round_trip(client: InProcessClientHandle) -> None:
    result = await client.request("account/read", {}, timeout=TIMEOUT)
    assert result == {"account": None, "requiresOpenaiAuth": False}
    assert client.initialize_result["platformFamily"] == "unix"


async def test_rpc_error_is_raised(client: InProcessClientHandle) -> None:
    with pytest.raises(RpcError) as info:
        await client.request("model/list", {"limit": "ten"}, timeout=TIMEOUT)
    assert info.value.code == -32600
    assert info.value.message.startswith("Invalid request: invalid type")


async def test_full_client_queue_raises_would_block(home: Path) -> None:
    handle = await small_client(home, 1)
    try:
        first = handle.submit_request("account/read", {})
        # The pump cannot run between these two calls: the queue of one is still full.
        with pytest.raises(WouldBlock):
            handle.submit_request("account/read", {})
        assert "requiresOpenaiAuth" in await asyncio.wait_for(first, TIMEOUT)
        # Nothing of the refused request was kept: the next one goes through.
        assert "requiresOpenaiAuth" in await handle.request("account/read", {}, timeout=TIMEOUT)
    finally:
        await asyncio.wait_for(handle.shutdown(), TIMEOUT)


async def test_duplicate_in_flight_request_id_is_refused(client: InProcessClientHandle) -> None:
    first = client.submit_request("account/read", {}, request_id="same")
    with pytest.raises(RpcError) as info:
        client.submit_request("account/read", {}, request_id="same")
    assert info.value.code == -32600
    assert info.value.message == "duplicate request id: same"
    assert "requiresOpenaiAuth" in await asyncio.wait_for(first, TIMEOUT)
    # Once answered, the id is free again.
    again = await client.request("account/read", {}, request_id="same", timeout=TIMEOUT)
    assert "requiresOpenaiAuth" in again


def _index(event: Event) -> int:
    assert isinstance(event, ServerNotification) and event.method == "warning", event
    return int(event.params["message"])


async def test_lagged_marker_counts_every_dropped_notification(home: Path) -> None:
    capacity, total = 4, 50
    handle = await small_client(home, capacity)
    sender = handle.processor.sender
    try:
        for i in range(30):
            await sender.broadcast("warning", {"message": str(i)})
        head = await drain_events(handle, 2)  # frees room for the rest to be queued
        for i in range(30, total):
            await sender.broadcast("warning", {"message": str(i)})
        events = head
        accounted = len(head)
        while accounted < total:
            event = await handle.next_event(timeout=TIMEOUT)
            accounted += event.skipped if isinstance(event, Lagged) else 1
            events.append(event)
    finally:
        await asyncio.wait_for(handle.shutdown(), TIMEOUT)
    received = [_index(e) for e in events if not isinstance(e, Lagged)]
    skipped = sum(e.skipped for e in events if isinstance(e, Lagged))
    assert len(received) + skipped == total
    assert received == sorted(received) and received[:capacity] == list(range(capacity))
    # Each marker sits exactly where its gap is: it covers the indices between its neighbours.
    previous = -1
    gap = 0
    for event in events:
        if isinstance(event, Lagged):
            gap += event.skipped
            continue
        assert _index(event) - previous - 1 == gap
        previous, gap = _index(event), 0
    assert total - 1 - previous == gap
    assert any(isinstance(e, Lagged) for e in events[: capacity + 2])  # a gap mid-stream too


async def test_lagged_marker_after_the_last_queued_event(home: Path) -> None:
    capacity, total = 4, 10
    handle = await small_client(home, capacity)
    try:
        for i in range(total):
            await handle.processor.sender.broadcast("warning", {"message": str(i)})
        events = await drain_events(handle, capacity + 1)
    finally:
        await asyncio.wait_for(handle.shutdown(), TIMEOUT)
    assert [_index(e) for e in events[:capacity]] == list(range(capacity))
    assert events[capacity] == Lagged(skipped=total - capacity)


async def test_deltas_merge_before_anything_is_dropped(home: Path) -> None:
    capacity = 2
    handle = await small_client(home, capacity)
    sender = handle.processor.sender
    item = {"threadId": "t", "turnId": "u", "itemId": "i"}
    try:
        await sender.broadcast("warning", {"message": "0"})
        for piece in ["Hel", "lo", ", ", "world"]:
            await sender.broadcast("item/agentMessage/delta", {**item, "delta": piece})
        events = await drain_events(handle, 2)
        await sender.broadcast("warning", {"message": "1"})
        events.append(await handle.next_event(timeout=TIMEOUT))
    finally:
        await asyncio.wait_for(handle.shutdown(), TIMEOUT)
    assert _index(events[0]) == 0
    assert isinstance(events[1], ServerNotification)
    assert events[1].method == "item/agentMessage/delta"
    assert events[1].params["delta"] == "Hello, world"
    assert _index(events[2]) == 1  # nothing was skipped: no Lagged marker


async def test_guaranteed_notifications_are_never_dropped(home: Path) -> None:
    capacity, total = 2, 20
    handle = await small_client(home, capacity)
    sender = handle.processor.sender

    async def produce() -> None:
        for i in range(total):
            method = ("turn/completed", "item/completed", "serverRequest/resolved")[i % 3]
            await sender.broadcast(method, {"n": i})

    try:
        producer = asyncio.create_task(produce())  # blocks on the full queue until we read
        events = await drain_events(handle, total)
        await asyncio.wait_for(producer, TIMEOUT)
    finally:
        await asyncio.wait_for(handle.shutdown(), TIMEOUT)
    assert all(isinstance(e, ServerNotification) for e in events)
    assert [e.params["n"] for e in events if isinstance(e, ServerNotification)] == list(
        range(total)
    )


async def test_server_requests_are_never_dropped(home: Path) -> None:
    capacity = 2
    handle = await small_client(home, capacity)
    processor = handle.processor
    try:
        assert processor.router.subscribe("thread-1", handle.connection.id)
        for i in range(5):  # fill the queue and then some
            await processor.sender.broadcast("warning", {"message": str(i)})
        params = {"threadId": "thread-1", "command": "ls"}
        pending = await processor.sender.request_thread(
            "thread-1", "item/commandExecution/requestApproval", params
        )
        events = await drain_events(handle, capacity + 2)
        assert [type(e) for e in events] == [
            ServerNotification,
            ServerNotification,
            Lagged,
            ServerRequest,
        ]
        request = events[-1]
        assert isinstance(request, ServerRequest)
        assert request.id == pending.id and request.params == params
        await handle.respond_to_server_request(request.id, {"decision": "accept"})
        assert await asyncio.wait_for(pending.future, TIMEOUT) == {"decision": "accept"}
        resolved = await handle.next_event(timeout=TIMEOUT)
        assert isinstance(resolved, ServerNotification)
        assert resolved.method == "serverRequest/resolved"
        assert resolved.params == {"threadId": "thread-1", "requestId": pending.id}
    finally:
        await asyncio.wait_for(handle.shutdown(), TIMEOUT)


def _register_hang(handle: InProcessClientHandle, stubborn: asyncio.Event | None) -> None:
    """A method that never finishes; a ``stubborn`` one also ignores cancellation until set."""

    async def hang(ctx: RequestContext, params: Any) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            if stubborn is None:
                raise
        assert stubborn is not None
        await stubborn.wait()

    handle.processor.registry.register("test/hang", GetAccountParams, hang, scope=Scope.CONCURRENT)


async def test_shutdown_cancels_running_work_and_fails_pending_requests(home: Path) -> None:
    handle = await start_in_process(home, opt_out_notification_methods=QUIET)
    _register_hang(handle, None)
    pending = handle.submit_request("test/hang", {})
    # Requests run in order: once this is answered, the hang is running.
    await handle.request("account/read", {}, timeout=TIMEOUT)
    await asyncio.wait_for(handle.shutdown(), TIMEOUT)
    with pytest.raises(RpcError) as info:
        await asyncio.wait_for(pending, TIMEOUT)
    assert info.value.code == INTERNAL_ERROR
    assert not handle.processor.is_busy()
    with pytest.raises(BrokenPipeError):
        handle.submit_request("account/read", {})


async def test_shutdown_is_bounded_when_work_ignores_cancellation(home: Path) -> None:
    handle = await start_in_process(home, opt_out_notification_methods=QUIET)
    release = asyncio.Event()
    _register_hang(handle, release)
    pending = handle.submit_request("test/hang", {})
    await handle.request("account/read", {}, timeout=TIMEOUT)
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await asyncio.wait_for(handle.shutdown(), SHUTDOWN_TIMEOUT * 3)
        assert loop.time() - started < SHUTDOWN_TIMEOUT * 2
        with pytest.raises(RpcError):
            await asyncio.wait_for(pending, TIMEOUT)
    finally:
        release.set()  # let the stubborn handler end before the loop closes
