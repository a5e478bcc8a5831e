"""The outbound router: which connections a message goes to.

Owns the connection table and the thread subscriptions (thread id → connection ids), and
delivers ``OutboundMessage``s to sinks: targeted (one connection, delivered even before the
handshake completes), to a thread's subscribers, or broadcast to every initialized
connection. Opt-outs filter notifications only, never responses or server requests. A
broadcast is one message object, so it is encoded once for every connection. The subscriptions
are changed by handlers through their ``RequestContext`` (see ``core.context``) and here when a
connection closes. This module must never decide what to send; it only routes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from appserver.core.connection import ConnectionState
from appserver.core.outbound import OutboundMessage
from appserver.core.sinks import SinkClosed

log = logging.getLogger("appserver.core")


class Router:
    def __init__(self) -> None:
        self.connections: dict[int, ConnectionState] = {}
        self._subscribers: dict[str, set[int]] = {}
        self._by_connection: dict[int, set[str]] = {}

    # -- connections ------------------------------------------------------------------------
    def add(self, conn: ConnectionState) -> None:
        self.connections[conn.id] = conn

    def remove(self, conn_id: int) -> ConnectionState | None:
        conn = self.connections.pop(conn_id, None)
        for thread_id in self._by_connection.pop(conn_id, set()):
            subs = self._subscribers.get(thread_id)
            if subs is not None:
                subs.discard(conn_id)
        if conn is not None:
            conn.closed = True
        return conn

    # -- subscriptions ----------------------------------------------------------------------
    def subscribe(self, thread_id: str, conn_id: int) -> bool:
        if conn_id not in self.connections:
            return False
        subs = self._subscribers.setdefault(thread_id, set())
        added = conn_id not in subs
        subs.add(conn_id)
        self._by_connection.setdefault(conn_id, set()).add(thread_id)
        return added

    def unsubscribe(self, thread_id: str, conn_id: int) -> bool:
        subs = self._subscribers.get(thread_id)
        if not subs or conn_id not in subs:
            return False
        subs.discard(conn_id)
        self._by_connection.get(conn_id, set()).discard(thread_id)
        return True

    def subscribers(self, thread_id: str) -> list[int]:
        return list(self._subscribers.get(thread_id, ()))

    def is_subscribed(self, thread_id: str, conn_id: int) -> bool:
        return conn_id in self._subscribers.get(thread_id, ())

    def forget_thread(self, thread_id: str) -> None:
        for conn_id in self._subscribers.pop(thread_id, set()):
            self._by_connection.get(conn_id, set()).discard(thread_id)

    # -- delivery ---------------------------------------------------------------------------
    async def deliver(self, conn: ConnectionState, msg: OutboundMessage) -> bool:
        if conn.closed:
            return False
        if msg.method is not None and not conn.wants(msg.method):
            return False
        try:
            if not conn.sink.offer(msg):
                await conn.sink.send(msg)
        except SinkClosed:
            # The connection went away (or was closed for being slow) while we wrote;
            # what it misses it recovers with thread/resume.
            return False
        return True

    async def to_connection(self, conn_id: int, msg: OutboundMessage) -> bool:
        conn = self.connections.get(conn_id)
        if conn is None:
            return False
        return await self.deliver(conn, msg)

    async def to_many(self, conn_ids: Iterable[int], msg: OutboundMessage) -> int:
        # ``deliver`` inlined: this loop runs once per subscriber for every streamed delta.
        sent = 0
        connections = self.connections
        method = msg.method
        for conn_id in conn_ids:
            conn = connections.get(conn_id)
            if conn is None or not conn.initialized or conn.closed:
                continue
            if method is not None and method in conn.opted_out:
                continue
            sink = conn.sink
            try:
                if not sink.offer(msg):
                    await sink.send(msg)
            except SinkClosed:
                continue
            sent += 1
        return sent

    async def broadcast(self, msg: OutboundMessage) -> int:
        return await self.to_many(list(self.connections), msg)
