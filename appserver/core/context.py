"""What a handler gets besides its params, and what it may return besides a plain result.

Owns ``RequestContext`` and ``Reply``. A handler answers its request in exactly one way: it
returns the result (a JSON value, a pydantic model, or a ``Reply``) or raises an ``RpcError``;
the processor sends the response. Work that must follow the response on the wire (the
``thread/started`` after ``thread/start``'s reply, the launch of the turn after ``turn/start``'s)
is returned with it as ``Reply(result, after=...)``: the processor queues the response to the
connection, then runs ``after`` in the same task, still inside the request's serialisation
(the thread's lock for a thread-scoped method), so nothing of the same thread can come
between them.

The context offers the handler the outbound verbs it needs (notify this connection, notify a
thread's subscribers, broadcast, send a server request), the subscription of this connection
to threads, and the connection's identity. It never exposes the processor, the router or the
sender: handlers cannot reply by hand or reach other connections' state.

Who owns the subscriber set: the router (``core.router``) holds thread id → connection ids.
It is changed by handlers, through ``subscribe``/``unsubscribe`` here (a connection asks for a
thread, or leaves it), and by the router itself when a connection closes. The engine only reads
it (who is listening, may an idle thread unload) through its ``Outbox`` port. (Until
``thread/start`` and ``thread/fork`` subscribe through their context, the engine's ``start``
and ``fork`` still do it for them through that port: the one exception, to be removed.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from appserver.core.server_requests import PendingRequest

if TYPE_CHECKING:
    from appserver.core.connection import ConnectionState
    from appserver.core.outgoing import OutgoingMessageSender

# Run after the response is queued: a coroutine function, or a plain function.
After = Callable[[], Awaitable[None] | None]


class Reply:
    """A handler's result plus the work that must follow the response on the wire."""

    __slots__ = ("after", "result")

    def __init__(self, result: Any, *, after: After | None = None) -> None:
        self.result = result
        self.after = after

    def __repr__(self) -> str:
        return f"Reply({self.result!r}, after={self.after!r})"


class RequestContext:
    """One request's view of the server: its connection and the outbound verbs."""

    __slots__ = ("_sender", "connection", "request_id")

    def __init__(
        self, connection: ConnectionState, request_id: str | int, sender: OutgoingMessageSender
    ) -> None:
        self.connection = connection
        self.request_id = request_id
        self._sender = sender

    # -- the connection -----------------------------------------------------------------------
    @property
    def connection_id(self) -> int:
        return self.connection.id

    @property
    def client_name(self) -> str | None:
        return self.connection.client_name

    @property
    def experimental_api(self) -> bool:
        return self.connection.experimental_api

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """A notification to this connection only."""
        await self._sender.notify(self.connection.id, method, params)

    # -- threads ------------------------------------------------------------------------------
    def subscribe(self, thread_id: str) -> bool:
        """Subscribe this connection to the thread; False when it already was (or is gone)."""
        return self._sender.router.subscribe(thread_id, self.connection.id)

    def unsubscribe(self, thread_id: str) -> bool:
        """False when this connection was not subscribed."""
        return self._sender.router.unsubscribe(thread_id, self.connection.id)

    def is_subscribed(self, thread_id: str) -> bool:
        return self._sender.router.is_subscribed(thread_id, self.connection.id)

    async def notify_thread(self, thread_id: str, method: str, params: dict[str, Any]) -> int:
        """A notification to every subscriber of the thread; returns how many got it."""
        return await self._sender.notify_thread(thread_id, method, params)

    async def broadcast(self, method: str, params: dict[str, Any]) -> int:
        """A notification to every initialized connection; returns how many got it."""
        return await self._sender.broadcast(method, params)

    # -- server requests ----------------------------------------------------------------------
    async def request_thread(
        self, thread_id: str, method: str, params: dict[str, Any]
    ) -> PendingRequest:
        """A server request to the thread's subscribers; await ``.future`` for the answer."""
        return await self._sender.request_thread(thread_id, method, params)

    async def replay_pending(self, thread_id: str) -> None:
        """Send this connection the thread's server requests still waiting for an answer."""
        await self._sender.replay_pending(thread_id, self.connection.id)
