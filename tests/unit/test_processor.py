"""``MessageProcessor`` driven with dicts in and exact dicts out, no I/O: the handshake, the
errors every request can meet, the one reply road (``Reply(result, after=...)``), per-thread
and serial scheduling, and the ingress admission rule (``ingest``)."""

from __future__ import annotations

import asyncio
import platform
from typing import Any

import pytest

from appserver import PROTOCOL_VERSION, __version__
from appserver.core.context import Reply, RequestContext
from appserver.core.outbound import Kind
from appserver.protocol.errors import (
    OVERLOADED,
    OVERLOADED_DATA,
    OVERLOADED_MESSAGE,
    RpcError,
    invalid_request,
)
from appserver.protocol.registry import Scope
from appserver.protocol.thread_params import ThreadIdParams
from tests.unit.core_driver import HOME, Core, RecordingSink, registry_with


async def echo(ctx: RequestContext, p: ThreadIdParams) -> Any:
    return {"threadId": p.thread_id, "connection": ctx.connection_id}


def _agent(name: str, version: str) -> str:
    os_part = f"{platform.system()} {platform.release()}; {platform.machine()}"
    return f"{name}/{PROTOCOL_VERSION} ({os_part}) appserver/{__version__} ({name}; {version})"


async def test_initialize_handshake_then_config_warnings() -> None:
    warning = {"summary": "bad key", "details": None}
    async with Core(
        registry_with(("t/echo", echo, Scope.INLINE)), config_warnings=[warning]
    ) as core:
        c = core.client()
        reply = await c.initialize(0, experimentalApi=True, optOutNotificationMethods=["x/y"])
        assert reply == {
            "id": 0,
            "result": {
                "userAgent": _agent("core-test", "1.0"),
                "codexHome": HOME,
                "platformFamily": "unix",
                "platformOs": "linux",
            },
        }
        assert await c.next() == {"method": "configWarning", "params": warning}
        assert c.conn.initialized and c.conn.experimental_api
        assert c.conn.opted_out == frozenset({"x/y"})
        assert await c.call(1, "initialize", {"clientInfo": {"name": "a", "version": "2"}}) == {
            "error": {"code": -32600, "message": "Already initialized"},
            "id": 1,
        }
        assert c.sink.kinds[:3] == [Kind.RESPONSE, Kind.NOTIFICATION, Kind.ERROR]


async def test_a_bad_initialize_leaves_the_connection_uninitialized() -> None:
    async with Core(registry_with(("t/echo", echo, Scope.INLINE))) as core:
        c = core.client()
        bad = await c.call(0, "initialize", {"clientInfo": {"name": "a\nb", "version": "1"}})
        assert bad == {
            "error": {
                "code": -32600,
                "message": "Invalid clientInfo.name: 'a\nb'. Must be a valid HTTP header value.",
            },
            "id": 0,
        }
        assert await c.call(1, "t/echo", {"threadId": "t"}) == {
            "error": {"code": -32600, "message": "Not initialized"},
            "id": 1,
        }


async def test_unknown_method_lists_the_known_ones() -> None:
    async with Core(registry_with(("t/echo", echo, Scope.INLINE))) as core:
        c = core.client()
        expected = {
            "error": {
                "code": -32600,
                "message": "Invalid request: unknown variant `no/such`, expected one of "
                "`initialize`, `t/echo`",
            },
            "id": "a",
        }
        assert await c.call("a", "no/such", {}) == expected  # before the handshake too
        await c.initialize(0)
        assert await c.call("a", "no/such", {}) == expected


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Invalid request: missing field `threadId`"),
        ({"threadId": 3}, "Invalid request: invalid type: integer `3`, expected a string"),
        (None, "Invalid request: missing field `params`"),
    ],
)
async def test_invalid_params(params: Any, message: str) -> None:
    async with Core(registry_with(("t/echo", echo, Scope.CONCURRENT))) as core:
        c = core.client()
        await c.initialize(0)
        assert await c.call(7, "t/echo", params) == {
            "error": {"code": -32600, "message": message},
            "id": 7,
        }


async def test_notifications_before_initialize_get_no_reply() -> None:
    async with Core(registry_with(("t/echo", echo, Scope.INLINE))) as core:
        c = core.client()
        await c.send({"method": "initialized"})
        await c.send({"method": "some/notification", "params": {"x": 1}})
        await c.initialize(0)
        reply = await c.call(1, "t/echo", {"threadId": "t"})
        assert reply == {"id": 1, "result": {"threadId": "t", "connection": c.conn.id}}
        assert len(c.sink.messages) == 2  # the initialize reply and this one: nothing else


async def test_handler_errors_become_one_error_reply_without_a_traceback() -> None:
    async def refuses(ctx: RequestContext, p: ThreadIdParams) -> Any:
        raise invalid_request(f"no thread {p.thread_id}", {"why": "gone"})

    async def crashes(ctx: RequestContext, p: ThreadIdParams) -> Any:
        raise ValueError("secret detail")

    registry = registry_with(
        ("t/refuse", refuses, Scope.THREAD), ("t/crash", crashes, Scope.INLINE)
    )
    async with Core(registry) as core:
        c = core.client()
        await c.initialize(0)
        assert await c.call(1, "t/refuse", {"threadId": "t"}) == {
            "error": {"code": -32600, "message": "no thread t", "data": {"why": "gone"}},
            "id": 1,
        }
        assert await c.call(2, "t/crash", {"threadId": "t"}) == {
            "error": {"code": -32603, "message": "internal error while handling t/crash"},
            "id": 2,
        }


@pytest.mark.parametrize("scope", [Scope.INLINE, Scope.CONCURRENT, Scope.THREAD])
async def test_reply_then_after(scope: Scope) -> None:
    """The response is queued before ``after`` runs, and what ``after`` sends follows it."""

    async def start(ctx: RequestContext, p: ThreadIdParams) -> Reply:
        ctx.subscribe(p.thread_id)
        sink = sinks[ctx.connection_id]
        seen = len(sink.messages)

        async def started() -> None:
            assert len(sink.messages) == seen + 1  # the reply is out already
            await ctx.notify_thread(p.thread_id, "thread/started", {"thread": {"id": p.thread_id}})

        return Reply({"thread": {"id": p.thread_id}}, after=started)

    sinks: dict[int, RecordingSink] = {}
    async with Core(registry_with(("t/start", start, scope))) as core:
        c = core.client()
        sinks[c.conn.id] = c.sink
        await c.initialize(0)
        assert await c.call(1, "t/start", {"threadId": "t1"}) == {
            "id": 1,
            "result": {"thread": {"id": "t1"}},
        }
        assert await c.next() == {"method": "thread/started", "params": {"thread": {"id": "t1"}}}


async def test_a_plain_function_after_and_a_model_result() -> None:
    done: list[str] = []

    async def interrupt(ctx: RequestContext, p: ThreadIdParams) -> Reply:
        return Reply(ThreadIdParams(thread_id=p.thread_id), after=lambda: done.append("set"))

    async with Core(registry_with(("t/interrupt", interrupt, Scope.THREAD))) as core:
        c = core.client()
        await c.initialize(0)
        assert await c.call(1, "t/interrupt", {"threadId": "t"}) == {
            "id": 1,
            "result": {"threadId": "t"},
        }
        assert done == ["set"]  # run in the same task, right after the reply was queued


async def test_a_failing_after_never_sends_a_second_response() -> None:
    async def start(ctx: RequestContext, p: ThreadIdParams) -> Reply:
        async def boom() -> None:
            raise RuntimeError("launch failed")

        return Reply({}, after=boom)

    registry = registry_with(("t/start", start, Scope.THREAD), ("t/echo", echo, Scope.THREAD))
    async with Core(registry) as core:
        c = core.client()
        await c.initialize(0)
        assert await c.call(1, "t/start", {"threadId": "t"}) == {"id": 1, "result": {}}
        # The same thread's next request is served, and is the next thing on the wire.
        assert await c.call(2, "t/echo", {"threadId": "t"}) == {
            "id": 2,
            "result": {"threadId": "t", "connection": c.conn.id},
        }
        assert c.unread() == []


@pytest.mark.parametrize("scope", [Scope.THREAD, Scope.SERIAL])
async def test_the_next_request_of_a_thread_waits_for_the_after_work(scope: Scope) -> None:
    """Within one thread (or among SERIAL requests) a request starts only once the previous
    one's reply and its ``after`` work are out."""
    release = asyncio.Event()
    log: list[str] = []

    async def turn_start(ctx: RequestContext, p: ThreadIdParams) -> Reply:
        log.append(f"start {p.thread_id}")

        async def launch() -> None:
            await release.wait()
            await ctx.notify_thread(p.thread_id, "turn/started", {"threadId": p.thread_id})
            log.append(f"launched {p.thread_id}")

        ctx.subscribe(p.thread_id)
        return Reply({"turn": {"id": "u1"}}, after=launch)

    async def steer(ctx: RequestContext, p: ThreadIdParams) -> Any:
        log.append(f"steer {p.thread_id}")
        return {"turnId": "u1"}

    registry = registry_with(
        ("turn/start", turn_start, scope),
        ("turn/steer", steer, scope),
        ("t/echo", echo, Scope.CONCURRENT),
    )
    async with Core(registry) as core:
        c = core.client()
        await c.initialize(0)
        await c.send({"id": 1, "method": "turn/start", "params": {"threadId": "t"}})
        await c.send({"id": 2, "method": "turn/steer", "params": {"threadId": "t"}})
        assert await c.next() == {"id": 1, "result": {"turn": {"id": "u1"}}}
        # A later request of another thread is answered: the steer has had every chance to
        # overtake the launch, and must not have.
        assert (await c.call(3, "t/echo", {"threadId": "other"}))["id"] == 3
        assert log == ["start t"]
        release.set()
        assert await c.next() == {"method": "turn/started", "params": {"threadId": "t"}}
        assert await c.next() == {"id": 2, "result": {"turnId": "u1"}}
        assert log == ["start t", "launched t", "steer t"]


async def test_other_threads_do_not_wait() -> None:
    release = asyncio.Event()

    async def slow(ctx: RequestContext, p: ThreadIdParams) -> Reply:
        return Reply({}, after=release.wait)

    registry = registry_with(("t/slow", slow, Scope.THREAD), ("t/echo", echo, Scope.THREAD))
    async with Core(registry) as core:
        c = core.client()
        await c.initialize(0)
        await c.send({"id": 1, "method": "t/slow", "params": {"threadId": "a"}})
        assert await c.next() == {"id": 1, "result": {}}
        reply = await c.call(2, "t/echo", {"threadId": "b"})
        assert reply == {"id": 2, "result": {"threadId": "b", "connection": c.conn.id}}
        release.set()


async def test_ingest_refuses_requests_and_holds_the_rest_when_the_queue_is_full() -> None:
    """The admission rule, once for every transport: no room → a request is answered -32001
    at once; a notification or a client's response waits for room (never dropped)."""
    core = Core(registry_with(("t/echo", echo, Scope.INLINE)), ingress_capacity=1)
    c = core.client()
    await c.send(
        {"id": 0, "method": "initialize", "params": {"clientInfo": {"name": "n", "version": "1"}}}
    )
    await c.send({"id": 1, "method": "t/echo", "params": {"threadId": "t"}})
    assert c.sink.messages == [
        {
            "error": {
                "code": OVERLOADED,
                "message": OVERLOADED_MESSAGE,
                "data": OVERLOADED_DATA,
            },
            "id": 1,
        }
    ]
    waiting = asyncio.ensure_future(c.send({"method": "initialized"}))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not waiting.done()  # held, not dropped and not refused
    async with core:  # the dispatcher runs: room is made, the notification gets in
        await asyncio.wait_for(waiting, 5)
        await c.sink.wait_for(2)
        assert c.sink.messages[1]["id"] == 0 and "result" in c.sink.messages[1]


async def test_client_response_resolves_a_server_request() -> None:
    async with Core(registry_with(("t/echo", echo, Scope.INLINE))) as core:
        c = core.client()
        await c.initialize(0)
        core.processor.router.subscribe("t", c.conn.id)
        sender = core.processor.sender
        req = await sender.request_thread("t", "item/tool/requestUserInput", {"threadId": "t"})
        assert await c.next() == {
            "id": req.id,
            "method": "item/tool/requestUserInput",
            "params": {"threadId": "t"},
        }
        await c.send({"id": req.id, "result": {"answers": {}}})
        assert await asyncio.wait_for(req.future, 5) == {"answers": {}}
        assert await c.next() == {
            "method": "serverRequest/resolved",
            "params": {"threadId": "t", "requestId": req.id},
        }
        failed = await sender.request_thread("t", "item/tool/requestUserInput", {"threadId": "t"})
        await c.next()
        await c.send({"id": failed.id, "error": {"code": -32000, "message": "declined"}})
        with pytest.raises(RpcError) as info:
            await asyncio.wait_for(failed.future, 5)
        assert (info.value.code, info.value.message) == (-32000, "declined")


async def test_a_closed_connections_server_requests_wait_for_the_next_subscriber() -> None:
    async with Core(registry_with(("t/echo", echo, Scope.INLINE))) as core:
        first, second = core.client(), core.client()
        await first.initialize(0)
        await second.initialize(0)
        core.processor.router.subscribe("t", first.conn.id)
        req = await core.processor.sender.request_thread("t", "x/approve", {"threadId": "t"})
        await first.next()
        await core.processor.close_connection(first.conn.id)
        assert first.conn.closed and first.sink.closed
        assert core.processor.router.subscribers("t") == []
        assert not req.future.done()  # still pending: nobody has answered
        # What the closed connection still had on its way in is not dispatched.
        await first.send({"id": req.id, "result": {"decision": "decline"}})
        # A client that resumes the thread has it replayed, and its answer counts.
        core.processor.router.subscribe("t", second.conn.id)
        await core.processor.sender.replay_pending("t", second.conn.id)
        assert await second.next() == {
            "id": req.id,
            "method": "x/approve",
            "params": {"threadId": "t"},
        }
        await second.send({"id": req.id, "result": {"decision": "accept"}})
        assert await asyncio.wait_for(req.future, 5) == {"decision": "accept"}
