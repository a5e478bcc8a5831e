"""What the engine needs from the layers around it, as Protocols.

Owns ``Outbox`` (notifications, server requests and subscriptions, satisfied by an adapter
over the core's sender and router) and ``ModelClientFactory``. The engine depends on these
shapes only, so it never imports ``core`` or knows about sockets.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Protocol

from appserver.engine.providers.events import ModelClient


class Outbox(Protocol):
    async def notify_thread(self, thread_id: str, method: str, params: dict[str, Any]) -> None: ...

    async def broadcast(self, method: str, params: dict[str, Any]) -> None: ...

    async def request_thread(
        self, thread_id: str, method: str, params: dict[str, Any]
    ) -> Awaitable[Any]:
        """Send a server request; the returned awaitable gives the client's result (or raises)."""
        ...

    async def cancel_thread_requests(self, thread_id: str) -> None: ...

    async def cancel_requests(self, thread_id: str, methods: frozenset[str], reason: str) -> int:
        """Fail the thread's pending requests of these methods only; how many."""
        ...

    async def replay_pending(self, thread_id: str, conn_id: int) -> None: ...

    def subscribe(self, thread_id: str, conn_id: int) -> bool: ...

    def unsubscribe(self, thread_id: str, conn_id: int) -> bool: ...

    def subscribers(self, thread_id: str) -> list[int]: ...


class ModelClientFactory(Protocol):
    def __call__(self, provider_id: str) -> ModelClient: ...
