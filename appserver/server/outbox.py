"""The engine's ``Outbox`` over the core's sender and router.

Owns nothing but the translation: the engine speaks of threads and awaitable answers, the
core of connections and pending requests. It must never add behaviour of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from appserver.core.outgoing import OutgoingMessageSender


class CoreOutbox:
    def __init__(self, sender: OutgoingMessageSender) -> None:
        self.sender = sender
        self.router = sender.router

    # Params arrive typed by method (``engine.ports.Outbox``); the core sends any mapping.
    async def notify_thread(self, thread_id: str, method: str, params: Mapping[str, Any]) -> None:
        await self.sender.notify_thread(thread_id, method, cast("dict[str, Any]", params))

    async def broadcast(self, method: str, params: Mapping[str, Any]) -> None:
        await self.sender.broadcast(method, cast("dict[str, Any]", params))

    async def request_thread(
        self, thread_id: str, method: str, params: Mapping[str, Any]
    ) -> asyncio.Future[Any]:
        pending = await self.sender.request_thread(
            thread_id, method, cast("dict[str, Any]", params)
        )
        return pending.future

    async def cancel_thread_requests(self, thread_id: str) -> None:
        await self.sender.cancel_thread_requests(thread_id)

    async def replay_pending(self, thread_id: str, conn_id: int) -> None:
        await self.sender.replay_pending(thread_id, conn_id)

    def subscribe(self, thread_id: str, conn_id: int) -> bool:
        return self.router.subscribe(thread_id, conn_id)

    def unsubscribe(self, thread_id: str, conn_id: int) -> bool:
        return self.router.unsubscribe(thread_id, conn_id)

    def subscribers(self, thread_id: str) -> list[int]:
        return self.router.subscribers(thread_id)
