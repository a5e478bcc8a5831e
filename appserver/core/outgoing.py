"""``OutgoingMessageSender``: the one door every outgoing message goes through.

Owns the verbs the processor and the engine use: respond, fail, notify one connection, notify
a thread's subscribers, broadcast, and send server requests and collect their answers. It
builds each message once (so a fan-out is encoded once) and hands it to the router. It must
never block on a single slow WebSocket client (the sinks' policies see to that) and must never
let an exception from one connection stop delivery to the others.
"""

from __future__ import annotations

import logging
from typing import Any

from appserver.core import outbound
from appserver.core.router import Router
from appserver.core.server_requests import PendingRequest, PendingServerRequests
from appserver.protocol.errors import INTERNAL_ERROR, RpcError

log = logging.getLogger("appserver.core")

TURN_TRANSITION_MESSAGE = "client request resolved because the turn state was changed"


class OutgoingMessageSender:
    def __init__(self, router: Router) -> None:
        self.router = router
        self.pending = PendingServerRequests()

    # -- replies ----------------------------------------------------------------------------
    async def respond(self, conn_id: int, request_id: str | int, result: Any) -> None:
        await self.router.to_connection(conn_id, outbound.response(request_id, result))

    async def fail(self, conn_id: int, request_id: str | int, err: RpcError) -> None:
        await self.router.to_connection(conn_id, outbound.error(request_id, err.to_wire()))

    # -- notifications ----------------------------------------------------------------------
    async def notify(self, conn_id: int, method: str, params: dict[str, Any]) -> None:
        await self.router.to_connection(conn_id, outbound.notification(method, params))

    async def notify_thread(self, thread_id: str, method: str, params: dict[str, Any]) -> int:
        msg = outbound.notification(method, params)
        return await self.router.to_many(self.router.subscribers(thread_id), msg)

    async def broadcast(self, method: str, params: dict[str, Any]) -> int:
        return await self.router.broadcast(outbound.notification(method, params))

    # -- server requests --------------------------------------------------------------------
    async def request_thread(
        self, thread_id: str, method: str, params: dict[str, Any]
    ) -> PendingRequest:
        """Send a server request to the thread's subscribers; await ``.future`` for the answer.

        With no subscriber the request stays pending: a client that resumes the thread gets it
        replayed (DESIGN.md, "Server requests").
        """
        req = self.pending.create(method, params, thread_id)
        req.future.add_done_callback(_consume_exception)
        msg = outbound.server_request(req.id, method, params)
        await self.router.to_many(self.router.subscribers(thread_id), msg)
        return req

    async def replay_pending(self, thread_id: str, conn_id: int) -> None:
        for req in self.pending.for_thread(thread_id):
            await self.router.to_connection(
                conn_id, outbound.server_request(req.id, req.method, req.params)
            )

    async def on_client_reply(
        self, conn_id: int, request_id: Any, result: Any, error: RpcError | None
    ) -> None:
        req = (
            self.pending.fail(request_id, error)
            if error is not None
            else self.pending.resolve(request_id, result)
        )
        if req is None:
            log.warning(
                "connection %d answered unknown or already-resolved server request %r",
                conn_id,
                request_id,
            )
            return
        await self._resolved(req)

    async def cancel_thread_requests(self, thread_id: str, reason: str = "turnTransition") -> None:
        for req in self.pending.for_thread(thread_id):
            self.pending.fail(
                req.id, RpcError(INTERNAL_ERROR, TURN_TRANSITION_MESSAGE, {"reason": reason})
            )
            await self._resolved(req)

    async def cancel_requests(self, thread_id: str, methods: frozenset[str], reason: str) -> int:
        """Fail the thread's pending requests of these ``methods`` only (e.g. the ones only a
        connected client can answer, when the last one has gone); how many were failed."""
        failed = 0
        for req in self.pending.for_thread(thread_id):
            if req.method in methods:
                self.pending.fail(req.id, RpcError(INTERNAL_ERROR, reason, {"reason": reason}))
                await self._resolved(req)
                failed += 1
        return failed

    def cancel_all(self, message: str = "app-server is shutting down") -> None:
        for req in self.pending.all():
            self.pending.fail(req.id, RpcError(INTERNAL_ERROR, message))

    async def _resolved(self, req: PendingRequest) -> None:
        if req.thread_id is not None:
            await self.notify_thread(
                req.thread_id,
                "serverRequest/resolved",
                {"threadId": req.thread_id, "requestId": req.id},
            )


def _consume_exception(fut: Any) -> None:
    # A request cancelled at shutdown may have no awaiter left; reading the exception keeps
    # asyncio from logging "exception was never retrieved" for an expected outcome.
    if not fut.cancelled():
        fut.exception()
