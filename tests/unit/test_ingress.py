"""The fair ingress queue: per-connection bounds, a total bound, round-robin service, FIFO
within a connection, waiting puts, and dropping a gone connection's messages."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from appserver.core.ingress import IngressQueue


async def _drain(queue: IngressQueue[tuple[int, int]]) -> list[tuple[int, int]]:
    return [await asyncio.wait_for(queue.get(), 5) for _ in range(len(queue))]


async def test_connections_are_served_in_turn() -> None:
    queue: IngressQueue[tuple[int, int]] = IngressQueue(per_connection=10, total=100)
    for i in range(3):
        assert queue.put_nowait(1, (1, i))
    assert queue.put_nowait(2, (2, 0))
    assert await _drain(queue) == [(1, 0), (2, 0), (1, 1), (1, 2)]


async def test_per_connection_bound_leaves_room_for_others() -> None:
    queue: IngressQueue[str] = IngressQueue(per_connection=2, total=100)
    assert queue.put_nowait(1, "a") and queue.put_nowait(1, "b")
    assert not queue.put_nowait(1, "c")
    assert queue.full_for(1) and not queue.full_for(2)
    assert queue.put_nowait(2, "x")


async def test_total_bound_holds_across_connections() -> None:
    queue: IngressQueue[int] = IngressQueue(per_connection=2, total=3)
    assert queue.put_nowait(1, 0) and queue.put_nowait(2, 0) and queue.put_nowait(3, 0)
    assert not queue.put_nowait(4, 0)
    assert not queue.put_nowait(1, 1)
    await queue.get()
    assert queue.put_nowait(4, 0)


async def test_put_waits_for_room() -> None:
    queue: IngressQueue[int] = IngressQueue(per_connection=1, total=10)
    assert queue.put_nowait(1, 0)
    waiting = asyncio.create_task(queue.put(1, 1))
    await asyncio.sleep(0)  # one scheduler turn: the put runs and finds no room
    assert not waiting.done()
    assert await asyncio.wait_for(queue.get(), 5) == 0
    await asyncio.wait_for(waiting, 5)
    assert await asyncio.wait_for(queue.get(), 5) == 1


async def test_get_waits_for_a_message() -> None:
    queue: IngressQueue[str] = IngressQueue(per_connection=4, total=4)
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(7, "hello")
    assert await asyncio.wait_for(getter, 5) == "hello"


async def test_drop_discards_one_connection_and_frees_room() -> None:
    queue: IngressQueue[tuple[int, int]] = IngressQueue(per_connection=3, total=4)
    for i in range(3):
        queue.put_nowait(1, (1, i))
    queue.put_nowait(2, (2, 0))
    assert not queue.put_nowait(3, (3, 0))
    assert queue.drop(1) == 3
    assert queue.drop(1) == 0
    assert queue.put_nowait(3, (3, 0))
    assert await _drain(queue) == [(2, 0), (3, 0)]


@given(st.lists(st.tuples(st.integers(0, 4), st.booleans()), max_size=200))
def test_order_within_a_connection_and_bounds_hold(ops: list[tuple[int, bool]]) -> None:
    """Any mix of puts and gets: each connection's messages come out in the order they went
    in, no connection ever holds more than its bound, and the total never passes its bound."""

    async def run() -> None:
        queue: IngressQueue[tuple[int, int]] = IngressQueue(per_connection=3, total=7)
        sent: dict[int, int] = {}
        received: dict[int, list[int]] = {}
        for conn, is_get in ops:
            if is_get and len(queue):
                c, n = await queue.get()
                received.setdefault(c, []).append(n)
            else:
                n = sent.get(conn, 0)
                if queue.put_nowait(conn, (conn, n)):
                    sent[conn] = n + 1
            assert len(queue) <= 7
            assert all(queue.queued(c) <= 3 for c in range(5))
        for c, n in await _drain(queue):
            received.setdefault(c, []).append(n)
        assert received == {c: list(range(n)) for c, n in sent.items() if n}

    asyncio.run(run())
