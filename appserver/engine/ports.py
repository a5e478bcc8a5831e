"""What the engine needs from the layers around it, as Protocols.

Owns ``Outbox`` (notifications, typed by method from the schema; server requests and
subscriptions; satisfied by an adapter over the core's sender and router), ``thread_emitter``
and ``ModelClientFactory``. The engine depends on these shapes only, so it never imports
``core`` or knows about sockets.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from appserver.engine.providers.events import ModelClient

if TYPE_CHECKING:
    from appserver.protocol.wire_types import Notify, NotifyThread


class Outbox(Protocol):
    # Typed by method (``wire_types.NotifyThread``/``Notify``): each notification the engine
    # sends is checked against its schema params type.
    @property
    def notify_thread(self) -> NotifyThread: ...

    @property
    def broadcast(self) -> Notify: ...

    async def request_thread(
        self, thread_id: str, method: str, params: Mapping[str, Any]
    ) -> Awaitable[Any]:
        """Send a server request; the returned awaitable gives the client's result (or raises)."""
        ...

    async def cancel_thread_requests(self, thread_id: str) -> None: ...

    async def replay_pending(self, thread_id: str, conn_id: int) -> None: ...

    def subscribe(self, thread_id: str, conn_id: int) -> bool: ...

    def unsubscribe(self, thread_id: str, conn_id: int) -> bool: ...

    def subscribers(self, thread_id: str) -> list[int]: ...


def thread_emitter(outbox: Outbox, thread_id: str) -> Notify:
    """``emit(method, params)``: a notification to ``thread_id``'s subscribers, typed by
    method like ``Outbox.notify_thread``."""
    notify: Any = outbox.notify_thread  # the same overloads, with the thread id bound

    async def emit(method: str, params: Mapping[str, Any]) -> None:
        await notify(thread_id, method, params)

    return emit


class ModelClientFactory(Protocol):
    def __call__(self, provider_id: str) -> ModelClient: ...
