"""Per-connection outbound queues and their backpressure policies.

Owns ``OutboundSink`` (what the router writes into) and ``QueueSink``, the bounded queue that
the stdio and WebSocket writer tasks and the in-process client drain. Policies (DESIGN.md,
"Backpressure"):

* ``AWAIT`` (stdio): ``send`` waits for room; producers feel the pressure; nothing dropped.
* ``MERGE_THEN_CLOSE`` (WebSocket): ``send`` never waits. Past the soft mark consecutive deltas
  of one item merge; past the hard mark (messages or bytes) the connection is closed through
  ``on_overflow`` so one slow client never stalls the others.
* ``MERGE_THEN_DROP`` (in-process): when full, a delta merges into the last queued delta of
  the same item, any other droppable notification is dropped and counted, and a ``LAGGED``
  marker is queued exactly where the gap is; guaranteed notifications wait for room and
  server requests are queued past the bound (never dropped, never waiting).

The merge rule (``_merge_last``) is the same for both merging policies.

``offer`` is the synchronous fast path the router tries first: it queues the message when the
policy allows that without waiting and returns False only when ``send`` would have to wait
(stdio's full queue), so the common case costs no coroutine per connection. ``send_now`` is the
one path that ignores every limit: the -32001 overload reply, which must
never be lost. This module must never encode JSON itself or know about threads.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from enum import Enum
from typing import Protocol

from appserver.core import outbound
from appserver.core.outbound import SERVER_REQUEST, OutboundMessage

log = logging.getLogger("appserver.core")


# Past this many queued messages, queued bytes are copied to exact size (``compact``).
BACKLOG_COMPACT = 64


class Policy(Enum):
    AWAIT = "await"
    MERGE_THEN_CLOSE = "merge-then-close"
    MERGE_THEN_DROP = "merge-then-drop"


class OutboundSink(Protocol):
    def offer(self, msg: OutboundMessage) -> bool: ...

    async def send(self, msg: OutboundMessage) -> None: ...

    def send_now(self, msg: OutboundMessage) -> None: ...

    def close(self) -> None: ...

    @property
    def closed(self) -> bool: ...


class SinkClosed(Exception):
    """The connection behind the sink is gone; the message was not delivered."""


class QueueSink:
    def __init__(
        self,
        policy: Policy,
        *,
        max_messages: int = 4096,
        soft_messages: int | None = None,
        max_bytes: int = 64 * 1024 * 1024,
        on_overflow: Callable[[], None] | None = None,
    ) -> None:
        self.policy = policy
        self._awaiting = policy is Policy.AWAIT
        self._merging = policy is Policy.MERGE_THEN_CLOSE  # also counts queued bytes
        self.max_messages = max(1, max_messages)
        self.soft_messages = soft_messages if soft_messages is not None else self.max_messages // 4
        self.max_bytes = max_bytes
        self._items: deque[OutboundMessage] = deque()
        self._sizes: deque[int] = deque()  # bytes each queued message counts for (merge policy)
        self._bytes = 0
        self._readable = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False
        self._on_overflow = on_overflow
        self.merged = 0  # how many deltas were folded into an earlier one
        self.dropped = 0  # MERGE_THEN_DROP: how many messages were dropped in all
        self._skipped = 0  # ... and how many since the last ``LAGGED`` marker

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def _append(self, msg: OutboundMessage) -> None:
        self._items.append(msg)
        if self._merging:
            size = len(msg.encoded())
            if len(self._items) > BACKLOG_COMPACT:
                msg.compact()  # a backlog is held for a while: keep only the bytes it needs
            self._sizes.append(size)
            self._bytes += size
        self._readable.set()
        if len(self._items) >= self.max_messages:
            self._room.clear()

    def send_now(self, msg: OutboundMessage) -> None:
        if not self._closed:
            if self._skipped:
                self._mark_gap()
            self._append(msg)

    async def send(self, msg: OutboundMessage) -> None:
        if self.offer(msg):
            return
        # AWAIT policy with a full queue: wait for room.
        while len(self._items) >= self.max_messages:
            self._room.clear()
            await self._room.wait()
            if self._closed:
                raise SinkClosed
        if self._skipped:
            self._mark_gap()
        self._append(msg)

    def offer(self, msg: OutboundMessage) -> bool:
        """Queue ``msg`` unless that would mean waiting (then False: await ``send``)."""
        if self._closed:
            raise SinkClosed
        items = self._items
        if not self._merging:
            if not self._awaiting:
                return self._offer_lossy(msg)
            if len(items) >= self.max_messages:
                return False
            self._append(msg)
            return True
        if len(items) >= self.soft_messages and self._merge_last(msg):
            return True
        if len(items) >= self.max_messages or self._bytes >= self.max_bytes:
            log.warning(
                "closing slow connection: outbound queue holds %d messages, %d bytes",
                len(items),
                self._bytes,
            )
            self.close()
            if self._on_overflow is not None:
                self._on_overflow()
            raise SinkClosed
        self._append(msg)
        return True

    def _offer_lossy(self, msg: OutboundMessage) -> bool:
        """``MERGE_THEN_DROP``: queue, merge, or drop and count; False only for a guaranteed
        notification that must wait for room."""
        if len(self._items) < self.max_messages or msg.kind is SERVER_REQUEST:
            if self._skipped:
                self._mark_gap()
            self._append(msg)
            return True
        if msg.critical:
            return False
        # Never merge across a gap: the last queued delta is before it.
        if not self._skipped and self._merge_last(msg):
            return True
        self._skipped += 1
        self.dropped += 1
        return True

    def _merge_last(self, msg: OutboundMessage) -> bool:
        """Fold a delta into the last queued message when both are deltas of the same item
        (the text a client assembles is unchanged); False when they are not."""
        key = msg.merge_key
        items = self._items
        if key is None or not items:
            return False
        last = items[-1]
        if last.merge_key != key:
            return False
        items[-1] = last.merged_with(msg)
        self.merged += 1
        if self._merging:
            # Count the text the merge added, without re-encoding the merged message.
            grow = len(msg.payload["params"]["delta"].encode())
            self._sizes[-1] += grow
            self._bytes += grow
        return True

    def _mark_gap(self) -> None:
        """Queue the ``LAGGED`` marker of the messages dropped since the last one."""
        self._append(outbound.lagged(self._skipped))
        self._skipped = 0

    def take_nowait(self) -> OutboundMessage | None:
        """The oldest queued message, or None when none is queued (never waits)."""
        items = self._items
        if not items:
            if not self._skipped:
                return None
            # Everything queued has been read: the gap is at the end, report it now rather
            # than only once some later message happens to be queued.
            self._mark_gap()
        msg = items.popleft()
        if self._merging:
            self._bytes -= self._sizes.popleft()
        if len(items) < self.max_messages:
            self._room.set()
        return msg

    async def next_batch(self, limit: int = 256) -> list[OutboundMessage]:
        """Wait for at least one message and take up to ``limit``; [] once closed and empty."""
        while not self._items:
            if self._skipped:
                self._mark_gap()  # the gap is at the end: report it now
                break
            if self._closed:
                return []
            self._readable.clear()
            await self._readable.wait()
        items = self._items
        n = min(limit, len(items))
        if n == len(items):
            batch = list(items)
            items.clear()
        else:
            batch = [items.popleft() for _ in range(n)]
        if self._merging:
            sizes = self._sizes
            self._bytes -= sum([sizes.popleft() for _ in range(n)])
        if len(items) < self.max_messages:
            self._room.set()
        return batch

    def close(self) -> None:
        self._closed = True
        self._readable.set()
        self._room.set()
