"""``OutgoingMessageSender``, no I/O: replies, notifications, and server requests with their
answers (correlation by id, first answer wins, replay to a resuming client, cancellation),
each checked as the exact dicts that reach the connections."""

from __future__ import annotations

import asyncio

import pytest

from appserver.core.connection import ConnectionState, next_connection_id
from appserver.core.outbound import Kind
from appserver.core.outgoing import TURN_TRANSITION_MESSAGE, OutgoingMessageSender
from appserver.core.router import Router
from appserver.protocol.errors import RpcError
from tests.unit.core_driver import RecordingSink


def _sender_with(
    n: int,
) -> tuple[OutgoingMessageSender, list[ConnectionState], list[RecordingSink]]:
    router = Router()
    conns, sinks = [], []
    for _ in range(n):
        sink = RecordingSink()
        conn = ConnectionState(next_connection_id(), "stdio", sink)
        conn.initialized = True
        router.add(conn)
        conns.append(conn)
        sinks.append(sink)
    return OutgoingMessageSender(router), conns, sinks


async def test_replies_and_notifications_carry_their_kind() -> None:
    sender, (conn,), (sink,) = _sender_with(1)
    await sender.respond(conn.id, 3, {"ok": True})
    await sender.fail(conn.id, "x", RpcError(-32600, "bad", {"k": 1}))
    await sender.notify(conn.id, "thread/tokenUsage/updated", {"threadId": "t"})
    assert sink.messages == [
        {"id": 3, "result": {"ok": True}},
        {"error": {"code": -32600, "message": "bad", "data": {"k": 1}}, "id": "x"},
        {"method": "thread/tokenUsage/updated", "params": {"threadId": "t"}},
    ]
    assert sink.kinds == [Kind.RESPONSE, Kind.ERROR, Kind.NOTIFICATION]


async def test_notify_thread_fans_out_to_subscribers_only() -> None:
    sender, (a, b, _), (sa, sb, sc) = _sender_with(3)
    sender.router.subscribe("t", a.id)
    sender.router.subscribe("t", b.id)
    assert await sender.notify_thread("t", "turn/started", {"threadId": "t"}) == 2
    assert await sender.broadcast("thread/name/updated", {"threadId": "t", "threadName": "n"}) == 3
    started = {"method": "turn/started", "params": {"threadId": "t"}}
    renamed = {"method": "thread/name/updated", "params": {"threadId": "t", "threadName": "n"}}
    assert sa.messages == [started, renamed]
    assert sb.messages == [started, renamed]
    assert sc.messages == [renamed]


async def test_server_request_and_its_answer_are_correlated_by_id() -> None:
    sender, (a, b), (sa, sb) = _sender_with(2)
    sender.router.subscribe("t", a.id)
    sender.router.subscribe("t", b.id)
    first = await sender.request_thread("t", "item/commandExecution/requestApproval", {"n": 1})
    second = await sender.request_thread("t", "item/commandExecution/requestApproval", {"n": 2})
    assert second.id == first.id + 1  # one counter for the process
    asked = [
        {"id": first.id, "method": "item/commandExecution/requestApproval", "params": {"n": 1}},
        {"id": second.id, "method": "item/commandExecution/requestApproval", "params": {"n": 2}},
    ]
    assert sa.messages == asked and sb.messages == asked
    assert sa.kinds == [Kind.SERVER_REQUEST, Kind.SERVER_REQUEST]
    # The second is answered first; each answer resolves its own request.
    await sender.on_client_reply(b.id, second.id, {"decision": "decline"}, None)
    await sender.on_client_reply(a.id, first.id, {"decision": "accept"}, None)
    assert await asyncio.wait_for(first.future, 5) == {"decision": "accept"}
    assert await asyncio.wait_for(second.future, 5) == {"decision": "decline"}
    resolved = [
        {"method": "serverRequest/resolved", "params": {"threadId": "t", "requestId": second.id}},
        {"method": "serverRequest/resolved", "params": {"threadId": "t", "requestId": first.id}},
    ]
    assert sa.messages[2:] == resolved and sb.messages[2:] == resolved
    # First answer wins: a late one from the other client changes nothing and sends nothing.
    await sender.on_client_reply(b.id, first.id, {"decision": "decline"}, None)
    await sender.on_client_reply(b.id, "not-ours", {}, None)
    assert len(sa.messages) == 4 and len(sb.messages) == 4


async def test_an_error_answer_fails_the_request() -> None:
    sender, (a,), _ = _sender_with(1)
    sender.router.subscribe("t", a.id)
    req = await sender.request_thread("t", "x/ask", {})
    await sender.on_client_reply(a.id, req.id, None, RpcError(-32000, "no"))
    with pytest.raises(RpcError) as info:
        await asyncio.wait_for(req.future, 5)
    assert info.value.to_wire() == {"code": -32000, "message": "no"}


async def test_a_request_without_subscribers_waits_and_is_replayed() -> None:
    sender, (a, b), (sa, sb) = _sender_with(2)
    sender.router.subscribe("t", a.id)
    req = await sender.request_thread("t", "x/ask", {"q": 1})
    sender.router.remove(a.id)  # the only subscriber goes away
    assert not req.future.done()
    sender.router.subscribe("t", b.id)
    await sender.replay_pending("t", b.id)
    assert sb.messages == [{"id": req.id, "method": "x/ask", "params": {"q": 1}}]
    await sender.on_client_reply(b.id, req.id, {"a": 2}, None)
    assert await asyncio.wait_for(req.future, 5) == {"a": 2}
    assert sa.messages == [{"id": req.id, "method": "x/ask", "params": {"q": 1}}]


async def test_turn_transition_and_shutdown_cancel_pending_requests() -> None:
    sender, (a,), (sa,) = _sender_with(1)
    sender.router.subscribe("t", a.id)
    turn = await sender.request_thread("t", "x/ask", {})
    other = await sender.request_thread("u", "x/ask", {})
    await sender.cancel_thread_requests("t")
    with pytest.raises(RpcError) as info:
        await asyncio.wait_for(turn.future, 5)
    assert info.value.to_wire() == {
        "code": -32603,
        "message": TURN_TRANSITION_MESSAGE,
        "data": {"reason": "turnTransition"},
    }
    assert sa.messages[-1] == {
        "method": "serverRequest/resolved",
        "params": {"threadId": "t", "requestId": turn.id},
    }
    assert not other.future.done()
    sender.cancel_all()
    with pytest.raises(RpcError) as info:
        await asyncio.wait_for(other.future, 5)
    assert info.value.message == "app-server is shutting down"
