"""Drive the core (``MessageProcessor``, router, sender) with dicts in and exact dicts out.

No transport, no socket, no engine: a client is a ``ConnectionState`` whose sink records every
message as the exact dict a transport would put on the wire (``emittedAtMs`` checked to be an
integer, then dropped so tests can compare whole messages), with the message's ``Kind``. The
style of python-lsp-jsonrpc's endpoint tests. Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import orjson
from pydantic import BaseModel

from appserver.core.connection import ConnectionState, next_connection_id
from appserver.core.outbound import Kind, OutboundMessage
from appserver.core.processor import MessageProcessor, RequestContext, ServerIdentity
from appserver.core.sinks import SinkClosed
from appserver.protocol.envelope import classify
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.protocol.thread_params import ThreadIdParams

WAIT = 5.0
HOME = "/home/core-test"


def wire(msg: OutboundMessage) -> dict[str, Any]:
    """The exact dict a transport writes for ``msg``, without its ``emittedAtMs`` stamp."""
    data: dict[str, Any] = orjson.loads(msg.encoded())
    stamp = data.pop("emittedAtMs", 0)
    assert isinstance(stamp, int)
    return data


class RecordingSink:
    """An ``OutboundSink`` that never waits and records what it is given, in order."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.kinds: list[Kind] = []
        self._arrived = asyncio.Event()
        self._closed = False

    def offer(self, msg: OutboundMessage) -> bool:
        if self._closed:
            raise SinkClosed
        self.messages.append(wire(msg))
        self.kinds.append(msg.kind)
        self._arrived.set()
        return True

    async def send(self, msg: OutboundMessage) -> None:
        self.offer(msg)

    def send_now(self, msg: OutboundMessage) -> None:
        if not self._closed:
            self.offer(msg)

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    async def wait_for(self, count: int) -> list[dict[str, Any]]:
        """Wait until ``count`` messages in all have arrived; return them all."""
        async with asyncio.timeout(WAIT):
            while len(self.messages) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return list(self.messages)


def open_connection(
    processor: MessageProcessor,
    *,
    initialized: bool = False,
    opted_out: frozenset[str] = frozenset(),
) -> tuple[ConnectionState, RecordingSink]:
    sink = RecordingSink()
    conn = ConnectionState(next_connection_id(), "inProcess", sink)
    conn.initialized = initialized
    conn.opted_out = opted_out
    processor.open_connection(conn)
    return conn, sink


class Client:
    """One connection to the processor: ``send`` a dict, read exact dicts from ``sink``."""

    def __init__(self, processor: MessageProcessor) -> None:
        self.processor = processor
        self.conn, self.sink = open_connection(processor)

    async def send(self, obj: dict[str, Any]) -> None:
        msg = classify(obj)
        assert not isinstance(msg, str), msg
        await self.processor.ingest(self.conn, msg)

    async def next(self) -> dict[str, Any]:
        """The next message not read yet."""
        seen = getattr(self, "_read", 0)
        messages = await self.sink.wait_for(seen + 1)
        self._read = seen + 1
        return messages[seen]

    async def call(self, request_id: int | str, method: str, params: Any = None) -> dict[str, Any]:
        obj: dict[str, Any] = {"id": request_id, "method": method}
        if params is not None:
            obj["params"] = params
        await self.send(obj)
        return await self.next()

    async def initialize(self, request_id: int = 0, **capabilities: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"clientInfo": {"name": "core-test", "version": "1.0"}}
        if capabilities:
            params["capabilities"] = capabilities
        reply = await self.call(request_id, "initialize", params)
        await self.send({"method": "initialized"})
        return reply

    def unread(self) -> list[dict[str, Any]]:
        return self.sink.messages[getattr(self, "_read", 0) :]


Handler = Callable[[RequestContext, Any], Awaitable[Any]]


def registry_with(
    *methods: tuple[str, Handler, Scope], params_model: type[BaseModel] = ThreadIdParams
) -> MethodRegistry:
    registry = MethodRegistry()
    for name, handler, scope in methods:
        registry.register(name, params_model, handler, scope=scope)
    return registry


class Core:
    """A running ``MessageProcessor`` (its dispatch loop as a task) for one test."""

    def __init__(self, registry: MethodRegistry, **kwargs: Any) -> None:
        self.processor = MessageProcessor(registry, ServerIdentity(HOME), **kwargs)
        self._task: asyncio.Task[None] | None = None

    def client(self) -> Client:
        return Client(self.processor)

    def start(self) -> None:
        self._task = asyncio.create_task(self.processor.run())

    async def __aenter__(self) -> Core:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.processor.shutdown(timeout=WAIT)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
