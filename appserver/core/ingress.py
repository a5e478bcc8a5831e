"""The fair, bounded ingress queue between the transports and the dispatcher.

Owns the decoded messages waiting to be processed: one FIFO per connection, served round-robin,
at most ``per_connection`` messages in each and ``total`` in all. A connection that floods fills
only its own FIFO, so its neighbours are never refused with -32001 because of it, and their
next message waits behind at most one message of each other busy connection. Order within one
connection is kept (the per-thread serialisation relies on it). The messages of a connection
that has gone are discarded with ``drop`` instead of being dispatched into the void.

asyncio.Queue cannot do this: it has one bound and one order for everyone.

It must never reply to a message or look inside one: what a full queue means for each kind of
message is the processor's decision.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class IngressQueue(Generic[T]):
    def __init__(self, per_connection: int, total: int) -> None:
        self.per_connection = max(1, per_connection)
        self.total = max(self.per_connection, total)
        self._fifos: dict[int, deque[T]] = {}
        self._turns: deque[int] = deque()  # connections with queued messages, next first
        self._size = 0
        self._readable = asyncio.Event()
        self._room = asyncio.Event()

    def __len__(self) -> int:
        return self._size

    def queued(self, conn_id: int) -> int:
        fifo = self._fifos.get(conn_id)
        return 0 if fifo is None else len(fifo)

    def full_for(self, conn_id: int) -> bool:
        return self._size >= self.total or self.queued(conn_id) >= self.per_connection

    def put_nowait(self, conn_id: int, item: T) -> bool:
        """Queue ``item`` behind ``conn_id``'s earlier messages; False when there is no room."""
        fifo = self._fifos.get(conn_id)
        if fifo is None:
            if self._size >= self.total:
                return False
            fifo = self._fifos[conn_id] = deque()
            self._turns.append(conn_id)
        elif len(fifo) >= self.per_connection or self._size >= self.total:
            return False
        fifo.append(item)
        self._size += 1
        self._readable.set()
        return True

    async def put(self, conn_id: int, item: T) -> None:
        """Queue ``item``, waiting for room rather than refusing it."""
        while not self.put_nowait(conn_id, item):
            self._room.clear()
            await self._room.wait()

    async def get(self) -> T:
        """The oldest message of the connection whose turn it is."""
        while not self._turns:
            self._readable.clear()
            await self._readable.wait()
        conn_id = self._turns.popleft()
        fifo = self._fifos[conn_id]
        item = fifo.popleft()
        if fifo:
            self._turns.append(conn_id)
        else:
            del self._fifos[conn_id]
        self._size -= 1
        self._room.set()
        return item

    def drop(self, conn_id: int) -> int:
        """Discard everything ``conn_id`` has queued; returns how many messages that was."""
        fifo = self._fifos.pop(conn_id, None)
        if fifo is None:
            return 0
        self._turns.remove(conn_id)
        self._size -= len(fifo)
        self._room.set()
        return len(fifo)
