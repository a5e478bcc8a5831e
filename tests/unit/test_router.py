"""The router, no I/O: subscriptions (the subscriber set it owns), who gets what (targeted,
thread fan-out, broadcast), opt-outs, closed connections."""

from __future__ import annotations

from appserver.core import outbound
from appserver.core.connection import ConnectionState, next_connection_id
from appserver.core.router import Router
from tests.unit.core_driver import RecordingSink


def _connect(
    router: Router, *, initialized: bool = True, opted_out: frozenset[str] = frozenset()
) -> tuple[ConnectionState, RecordingSink]:
    sink = RecordingSink()
    conn = ConnectionState(next_connection_id(), "webSocket", sink)
    conn.initialized = initialized
    conn.opted_out = opted_out
    router.add(conn)
    return conn, sink


def test_subscribe_unsubscribe_and_a_closing_connection() -> None:
    router = Router()
    a, _ = _connect(router)
    b, _ = _connect(router)
    assert router.subscribe("t", a.id) is True
    assert router.subscribe("t", a.id) is False  # already
    assert router.subscribe("t", b.id) is True
    assert router.subscribe("u", a.id) is True
    assert sorted(router.subscribers("t")) == sorted([a.id, b.id])
    assert router.subscribe("t", 10**9) is False  # no such connection
    assert router.unsubscribe("t", b.id) is True
    assert router.unsubscribe("t", b.id) is False
    assert router.subscribers("t") == [a.id]
    assert router.remove(a.id) is a
    assert a.closed
    assert router.subscribers("t") == [] and router.subscribers("u") == []
    assert router.remove(a.id) is None
    router.subscribe("t", b.id)
    router.forget_thread("t")
    assert router.subscribers("t") == [] and not router.is_subscribed("t", b.id)


async def test_fan_out_reaches_initialized_subscribers_only() -> None:
    router = Router()
    a, sink_a = _connect(router)
    b, sink_b = _connect(router)
    early, sink_early = _connect(router, initialized=False)
    _, sink_other = _connect(router)
    for conn in (a, b, early):
        router.subscribe("t", conn.id)
    delta = outbound.notification(
        "item/agentMessage/delta", {"threadId": "t", "turnId": "u", "itemId": "i", "delta": "hi"}
    )
    assert await router.to_many(router.subscribers("t"), delta) == 2
    expected = {
        "method": "item/agentMessage/delta",
        "params": {"threadId": "t", "turnId": "u", "itemId": "i", "delta": "hi"},
    }
    assert sink_a.messages == [expected] and sink_b.messages == [expected]
    assert sink_early.messages == [] and sink_other.messages == []
    # A targeted message goes to a connection before its handshake completes.
    reply = outbound.error(0, {"code": -32600, "message": "Not initialized"})
    assert await router.to_connection(early.id, reply)
    assert sink_early.messages == [
        {"error": {"code": -32600, "message": "Not initialized"}, "id": 0}
    ]
    assert await router.to_connection(10**9, reply) is False


async def test_opt_outs_filter_notifications_never_requests_or_replies() -> None:
    router = Router()
    conn, sink = _connect(router, opted_out=frozenset({"x/request", "thread/started"}))
    router.subscribe("t", conn.id)
    assert await router.to_many([conn.id], outbound.notification("thread/started", {})) == 0
    assert await router.to_connection(conn.id, outbound.notification("thread/started", {})) is False
    assert await router.to_many([conn.id], outbound.server_request(4, "x/request", {})) == 1
    assert await router.to_connection(conn.id, outbound.response(1, {})) is True
    assert sink.messages == [
        {"id": 4, "method": "x/request", "params": {}},
        {"id": 1, "result": {}},
    ]


async def test_broadcast_is_one_message_for_every_initialized_connection() -> None:
    router = Router()
    sinks = [_connect(router)[1] for _ in range(3)]
    _, pending = _connect(router, initialized=False)
    seen: list[outbound.OutboundMessage] = []
    for sink in sinks:
        original = sink.offer

        def offer(msg: outbound.OutboundMessage, original=original) -> bool:  # type: ignore[no-untyped-def]
            seen.append(msg)
            return original(msg)

        sink.offer = offer  # type: ignore[method-assign]
    msg = outbound.notification("account/updated", {"authMode": None, "planType": None})
    assert await router.broadcast(msg) == 3
    assert all(m is msg for m in seen) and len(seen) == 3
    assert pending.messages == []
    for sink in sinks:
        assert sink.messages == [
            {"method": "account/updated", "params": {"authMode": None, "planType": None}}
        ]


async def test_a_closed_sink_is_skipped_and_the_others_still_get_the_message() -> None:
    router = Router()
    a, sink_a = _connect(router)
    b, sink_b = _connect(router)
    sink_a.close()
    msg = outbound.notification("turn/completed", {"threadId": "t"})
    assert await router.to_many([a.id, b.id], msg) == 1
    assert sink_a.messages == [] and sink_b.messages == [
        {"method": "turn/completed", "params": {"threadId": "t"}}
    ]
    a.closed = True
    assert await router.deliver(a, msg) is False
