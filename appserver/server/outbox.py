"""The engine's ``Outbox`` over the core's sender and router.

Owns nothing but the translation: the engine speaks of threads and awaitable answers, the
core of connections and pending requests. It must never add behaviour of its own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from appserver.core.outgoing import OutgoingMessageSender


class CoreOutbox:
    def __init__(self, sender: OutgoingMessageSender) -> None:
        self.sender = sender
        self.router = sender.router

    async def notify_thread(self, thread_id: str, method: str, params: dict[str, Any]) -> None:
        await self.sender.notify_thread(thread_id, method, params)

    async def broadcast(self, method: str, params: dict[str, Any]) -> None:
        await self.sender.broadcast(method, params)

    async def request_thread(
        self, thread_id: str, method: str, params: dict[str, Any]
    ) -> asyncio.Future[Any]:
        return (await self.sender.request_thread(thread_id, method, params)).future

    async def cancel_thread_requests(self, thread_id: str) -> None:
        await self.sender.cancel_thread_requests(thread_id)

    async def cancel_requests(self, thread_id: str, methods: frozenset[str], reason: str) -> int:
        return await self.sender.cancel_requests(thread_id, methods, reason)

    async def replay_pending(self, thread_id: str, conn_id: int) -> None:
        await self.sender.replay_pending(thread_id, conn_id)

    def subscribe(self, thread_id: str, conn_id: int) -> bool:
        return self.router.subscribe(thread_id, conn_id)

    def unsubscribe(self, thread_id: str, conn_id: int) -> bool:
        return self.router.unsubscribe(thread_id, conn_id)

    def subscribers(self, thread_id: str) -> list[int]:
        return self.router.subscribers(thread_id)
