"""The in-process transport: the core driven from Python objects, no JSON at the boundary.

Owns ``InProcessClientHandle`` (the embedded client API) and its sink. Contract (spec §6):

* ``start`` performs ``initialize`` + ``initialized`` and returns a ready client.
* Client → runtime goes through a bounded queue: a full queue raises ``WouldBlock`` at once.
* A request id still in flight cannot be reused: -32600 ``duplicate request id: <id>``.
* Responses resolve the caller's future directly and are never dropped. Server requests and
  the guaranteed notifications (``turn/completed``, ``item/completed``,
  ``serverRequest/resolved``) wait for room in the event queue and are never dropped. Other
  notifications merge with a queued delta of the same item when the queue is full, else are
  dropped and counted; the consumer then sees ``Lagged(skipped=n)`` exactly where the gap is.
* ``shutdown`` stops the runtime as a second signal stops the CLI: running turns are
  interrupted and recorded, their ``turn/completed`` (``interrupted``) stays readable with
  ``next_event``; bounded: 5 s, then the runtime's tasks are cancelled.

This module must never encode JSON or import the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from appserver.core.connection import ConnectionState, next_connection_id
from appserver.core.outbound import ERROR, LAGGED, RESPONSE, SERVER_REQUEST, OutboundMessage
from appserver.core.processor import MessageProcessor
from appserver.core.sinks import Policy, QueueSink, SinkClosed
from appserver.protocol.envelope import ErrorReply, Message, Notification, Request, Response
from appserver.protocol.errors import INTERNAL_ERROR, RpcError, invalid_request

SHUTDOWN_TIMEOUT = 5.0
QUEUE_FULL_MESSAGE = "in-process app-server request queue is full"


class WouldBlock(BlockingIOError):
    """The client → runtime queue is full; retry later (nothing was sent)."""


@dataclass(frozen=True, slots=True)
class ServerNotification:
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ServerRequest:
    id: int
    method: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Lagged:
    skipped: int


Event = ServerNotification | ServerRequest | Lagged


class _EventSink:
    """The connection's sink: responses resolve the caller's futures at once; everything else
    goes through a ``MERGE_THEN_DROP`` queue (the merge/drop policy lives in ``core.sinks``)
    and becomes a typed event when read."""

    def __init__(self, capacity: int, on_response: Callable[[dict[str, Any]], None]) -> None:
        self.capacity = max(1, capacity)
        self._queue = QueueSink(Policy.MERGE_THEN_DROP, max_messages=self.capacity)
        self._on_response = on_response

    def send_now(self, msg: OutboundMessage) -> None:
        kind = msg.kind
        if kind is RESPONSE or kind is ERROR:
            self._on_response(msg.payload)
        else:
            self._queue.send_now(msg)

    async def send(self, msg: OutboundMessage) -> None:
        if not self.offer(msg):
            await self._queue.send(msg)

    def offer(self, msg: OutboundMessage) -> bool:
        """Deliver, queue, merge or count-as-skipped at once; False when ``send`` must wait."""
        kind = msg.kind
        if kind is RESPONSE or kind is ERROR:
            if self._queue.closed:
                raise SinkClosed
            self._on_response(msg.payload)
            return True
        return self._queue.offer(msg)

    async def next_event(self) -> Event | None:
        batch = await self._queue.next_batch(1)
        return _event(batch[0]) if batch else None

    def take_nowait(self) -> Event | None:
        """The next queued event, or None when none is queued (never waits)."""
        msg = self._queue.take_nowait()
        return None if msg is None else _event(msg)

    @property
    def closed(self) -> bool:
        return self._queue.closed

    def close(self) -> None:
        self._queue.close()


def _event(msg: OutboundMessage) -> Event:
    payload = msg.payload
    kind = msg.kind
    if kind is LAGGED:
        return Lagged(payload["skipped"])
    if kind is SERVER_REQUEST:
        return ServerRequest(payload["id"], payload["method"], payload["params"])
    return ServerNotification(payload["method"], payload["params"])


class InProcessClientHandle:
    def __init__(
        self,
        processor: MessageProcessor,
        *,
        channel_capacity: int = 128,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.processor = processor
        capacity = max(1, channel_capacity)
        self._sink = _EventSink(capacity, self._on_response)
        self.connection = ConnectionState(next_connection_id(), "inProcess", self._sink)
        self._outbox: asyncio.Queue[Message] = asyncio.Queue(capacity)
        self._in_flight: dict[str | int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._on_shutdown = on_shutdown
        self._pump: asyncio.Task[None] | None = None
        self._closed = False
        self.initialize_result: dict[str, Any] = {}
        self.on_raw_response: Callable[[dict[str, Any]], None] | None = None

    @classmethod
    async def start(
        cls,
        processor: MessageProcessor,
        *,
        client_name: str = "appserver-embedded",
        client_version: str = "0.0.0",
        experimental_api: bool = False,
        opt_out_notification_methods: list[str] | None = None,
        channel_capacity: int = 128,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ) -> InProcessClientHandle:
        handle = cls.connect(processor, channel_capacity=channel_capacity, on_shutdown=on_shutdown)
        caps: dict[str, Any] = {"experimentalApi": experimental_api}
        if opt_out_notification_methods is not None:
            caps["optOutNotificationMethods"] = opt_out_notification_methods
        params = {
            "clientInfo": {"name": client_name, "title": None, "version": client_version},
            "capabilities": caps,
        }
        try:
            handle.initialize_result = await handle.request("initialize", params, request_id=0)
        except RpcError as err:
            await handle.shutdown()
            raise OSError(f"in-process initialize failed: {err.message}") from err
        await handle.notify("initialized", {})
        # "Ready" includes an empty client queue: with a capacity of 1 the first request
        # must not find it still holding our own ``initialized``.
        await handle._outbox.join()
        return handle

    @classmethod
    def connect(
        cls,
        processor: MessageProcessor,
        *,
        channel_capacity: int = 128,
        on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ) -> InProcessClientHandle:
        """Attach without the handshake (tests of the handshake itself use this)."""
        handle = cls(processor, channel_capacity=channel_capacity, on_shutdown=on_shutdown)
        processor.open_connection(handle.connection)
        handle._pump = asyncio.create_task(handle._pump_loop())
        return handle

    def submit_message(self, msg: Message) -> None:
        """Queue an already-classified message of any kind (raises ``WouldBlock`` when full)."""
        self._put(msg)

    # -- client → runtime -------------------------------------------------------------------
    def _put(self, msg: Message) -> None:
        if self._closed:
            raise BrokenPipeError("in-process app-server runtime is closed")
        try:
            self._outbox.put_nowait(msg)
        except asyncio.QueueFull:
            raise WouldBlock("in-process app-server client queue is full") from None

    async def _pump_loop(self) -> None:
        conn = self.connection
        while True:
            msg = await self._outbox.get()
            await self.processor.ingest(conn, msg, QUEUE_FULL_MESSAGE)
            self._outbox.task_done()

    def submit_request(
        self, method: str, params: Any = None, *, request_id: str | int | None = None
    ) -> asyncio.Future[Any]:
        """Queue a request without waiting; the future resolves with the result or RpcError."""
        rid = next(self._ids) if request_id is None else request_id
        if rid in self._in_flight:
            raise invalid_request(f"duplicate request id: {rid}")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._put(Request(rid, method, _plain(params)))
        self._in_flight[rid] = fut
        return fut

    async def request(
        self,
        method: str,
        params: Any = None,
        *,
        request_id: str | int | None = None,
        timeout: float | None = None,
    ) -> Any:
        fut = self.submit_request(method, params, request_id=request_id)
        return await asyncio.wait_for(fut, timeout)

    async def notify(self, method: str, params: Any = None) -> None:
        self._put(Notification(method, _plain(params)))

    async def respond_to_server_request(self, request_id: int, result: Any) -> None:
        self._put(Response(request_id, _plain(result)))

    async def fail_server_request(
        self, request_id: int, code: int, message: str, data: Any = None
    ) -> None:
        self._put(ErrorReply(request_id, code, message, data))

    # -- runtime → client -------------------------------------------------------------------
    def _on_response(self, payload: dict[str, Any]) -> None:
        fut = self._in_flight.pop(payload.get("id"), None)  # type: ignore[arg-type]
        if fut is None:
            # A reply to a message queued with ``submit_message``: the caller keeps its own ids.
            if self.on_raw_response is not None:
                self.on_raw_response(payload)
            return
        if fut.done():
            return
        err = payload.get("error")
        if err is not None:
            fut.set_exception(RpcError(err["code"], err["message"], err.get("data")))
        else:
            fut.set_result(payload.get("result"))

    async def next_event(self, timeout: float | None = None) -> Event:
        # An event already queued is returned at once; otherwise wait in this task (no
        # helper task per event, so the consumer runs as soon as the producer yields).
        event = self._sink.take_nowait()
        if event is not None:
            return event
        async with asyncio.timeout(timeout):
            event = await self._sink.next_event()
        if event is None:
            raise BrokenPipeError("in-process app-server runtime is closed")
        return event

    # -- lifecycle --------------------------------------------------------------------------
    async def shutdown(self) -> None:
        if self._closed:
            return
        self._closed = True

        async def stop() -> None:
            # The runtime first: its running turns end as interrupted while this client is
            # still subscribed, so their turn/completed is among the events left to read.
            if self._on_shutdown is not None:
                await self._on_shutdown()
            await self.processor.close_connection(self.connection.id)

        try:
            await asyncio.wait_for(stop(), SHUTDOWN_TIMEOUT)
        except TimeoutError:
            pass
        finally:
            if self._pump is not None:
                self._pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._pump
            for fut in self._in_flight.values():
                if not fut.done():
                    fut.set_exception(
                        RpcError(INTERNAL_ERROR, "in-process app-server runtime is shutting down")
                    )
            self._in_flight.clear()
            self._sink.close()


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    return value
