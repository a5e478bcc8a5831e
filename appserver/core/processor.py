"""``MessageProcessor``: the transport-free core every connection's messages go through.

Owns the bounded ingress queue and its admission rule (``ingest``: a request that finds no
room is refused -32001 at once, anything else waits for room; every transport calls it), the
handshake (``initialize`` once per connection, capabilities, opt-outs), method lookup,
experimental gating, params validation with the registry's prebuilt ``TypeAdapter``s,
scheduling (inline, concurrent, or one at a time per thread), the one reply road (a handler's
result, ``RpcError`` or ``Reply`` becomes exactly one response, then the reply's ``after``
work runs), and turning every failure into a JSON-RPC error in exactly one place.

It must never know which transport a connection uses beyond its ``origin`` label, never write
bytes, and never put a traceback on the wire: unexpected exceptions are logged to stderr and
answered with a plain -32603.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from appserver.core import outbound
from appserver.core.connection import ConnectionState
from appserver.core.context import Reply as Reply
from appserver.core.context import RequestContext as RequestContext
from appserver.core.ingress import IngressQueue
from appserver.core.outgoing import OutgoingMessageSender
from appserver.core.router import Router
from appserver.protocol.envelope import (
    MISSING,
    ErrorReply,
    Message,
    Notification,
    Request,
    Response,
)
from appserver.protocol.errors import (
    INTERNAL_ERROR,
    OVERLOADED,
    OVERLOADED_DATA,
    OVERLOADED_MESSAGE,
    RpcError,
    invalid_request,
)
from appserver.protocol.handshake import parse_initialize
from appserver.protocol.registry import MethodRegistry, MethodSpec, Scope
from appserver.protocol.validation import validate_params
from appserver.protocol.version import APPSERVER_VERSION, PROTOCOL_VERSION

log = logging.getLogger("appserver.core")

INGRESS_TOTAL_FACTOR = 16
# The lock key of ``Scope.SERIAL`` requests (beside thread ids, which never hold a NUL).
SERIAL_KEY = "\x00serial"

LOAD_FAILED_MESSAGE = "internal error: the server failed to load its methods; see its log"

DRAINING_MESSAGE = "Server is draining; retry after reconnecting"
# While draining, a client may still stop its own running turn.
ALLOWED_WHILE_DRAINING = frozenset({"turn/interrupt"})


@dataclass(frozen=True, slots=True)
class ServerIdentity:
    """What ``initialize`` reports about this server."""

    codex_home: str

    def user_agent(self, client_name: str, client_version: str) -> str:
        # Clients parse "<name>/<version>" from the front, so the Codex protocol version we
        # implement goes there; our own version rides in the product comment.
        os_name = platform.system() or "Unknown"
        os_version = platform.release() or "unknown"
        arch = platform.machine() or "unknown"
        return (
            f"{client_name}/{PROTOCOL_VERSION} ({os_name} {os_version}; {arch}) "
            f"appserver/{APPSERVER_VERSION} ({client_name}; {client_version})"
        )


def _platform_os() -> str:
    return {"darwin": "macos", "win32": "windows"}.get(sys.platform, sys.platform)


def _plain(result: Any) -> Any:
    dump = getattr(result, "model_dump", None)  # a pydantic result model
    if dump is not None:
        return dump(mode="json", by_alias=True)
    return result


def _is_header_value(name: str) -> bool:
    return all(c == "\t" or 0x20 <= ord(c) < 0x7F for c in name)


class MessageProcessor:
    def __init__(
        self,
        registry: MethodRegistry,
        identity: ServerIdentity,
        *,
        ingress_capacity: int = 1024,
        config_warnings: list[dict[str, Any]] | None = None,
        loader: Callable[[], None] | None = None,
    ) -> None:
        self.registry = registry
        self.identity = identity
        self.router = Router()
        self.sender = OutgoingMessageSender(self.router)
        self.config_warnings = list(config_warnings or [])
        # ``ingress_capacity`` bounds each connection; all of them together may hold a few
        # connections' worth, so memory stays bounded however many clients there are.
        self._ingress: IngressQueue[tuple[ConnectionState, Message]] = IngressQueue(
            ingress_capacity, ingress_capacity * INGRESS_TOTAL_FACTOR
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread_locks: dict[str, asyncio.Lock] = {}
        self.draining = False
        self.on_connection_closed: list[Callable[[ConnectionState], Awaitable[None]]] = []
        self.busy_checks: list[Callable[[], bool]] = []
        self._idle = asyncio.Event()
        self._idle.set()
        # Registers the methods behind the handshake (the engine and its imports) on first
        # need; see ``_load``.
        self._loader = loader
        self._load_failed = False
        # Requests taken so far, every connection: lets background work wait for a quiet gap.
        self.requests_seen = 0

    # -- connections ------------------------------------------------------------------------
    def open_connection(self, conn: ConnectionState) -> None:
        self.router.add(conn)

    async def close_connection(self, conn_id: int) -> None:
        conn = self.router.remove(conn_id)
        if conn is None:
            return
        self._ingress.drop(conn_id)
        conn.sink.close()
        for hook in self.on_connection_closed:
            try:
                await hook(conn)
            except Exception:
                log.exception("connection-closed hook failed")

    # -- ingress ----------------------------------------------------------------------------
    async def ingest(
        self, conn: ConnectionState, msg: Message, overload_message: str = OVERLOADED_MESSAGE
    ) -> None:
        """Queue a message from a transport: the one admission rule. A request that finds the
        queue full is answered -32001 at once, past every outbound limit; a response or a
        notification is never dropped: it waits for room, and the transport's reader with it.
        The queue is per connection: one client's flood never gets another client refused.
        (Does not suspend when there is room: the common case costs no wait.)"""
        if self._ingress.put_nowait(conn.id, (conn, msg)):
            return
        if isinstance(msg, Request):
            err = RpcError(OVERLOADED, overload_message, dict(OVERLOADED_DATA))
            conn.sink.send_now(outbound.error(msg.id, err.to_wire()))
            return
        await self._ingress.put(conn.id, (conn, msg))

    async def run(self) -> None:
        """The dispatch loop; runs until cancelled."""
        queue = self._ingress
        while True:
            conn, msg = await queue.get()
            if conn.closed or conn.sink.closed:
                continue  # nobody is left to answer
            try:
                if isinstance(msg, Request):
                    await self._on_request(conn, msg)
                elif isinstance(msg, Notification):
                    self._on_notification(conn, msg)
                elif isinstance(msg, Response):
                    await self.sender.on_client_reply(conn.id, msg.id, msg.result, None)
                elif isinstance(msg, ErrorReply):
                    err = RpcError(msg.code, msg.message, msg.data)
                    await self.sender.on_client_reply(conn.id, msg.id, None, err)
            except Exception:
                # A bug in one message's handling must not stop the loop for everyone.
                log.exception("failed to process a message from connection %d", conn.id)

    # -- requests ---------------------------------------------------------------------------
    async def _on_request(self, conn: ConnectionState, req: Request) -> None:
        self.requests_seen += 1
        if req.method == "initialize":
            await self._reply(conn, req, self._initialize(conn, req))
            if conn.initialized:
                for warning in self.config_warnings:
                    await self.sender.notify(conn.id, "configWarning", warning)
                if self._loader is not None:
                    # Load while the client reads the reply, not before it: two loop turns
                    # let the writer put the reply on the wire first.
                    loop = asyncio.get_running_loop()
                    loop.call_soon(loop.call_soon, self._load)
            return
        if self._loader is not None:
            # Let the writers put what is already queued (the initialize reply of a client
            # that pipelines its first requests) on the wire before imports block the loop.
            await asyncio.sleep(0)
            self._load()
        if self._load_failed:
            await self._reply(conn, req, RpcError(INTERNAL_ERROR, LOAD_FAILED_MESSAGE))
            return
        spec = self.registry.get(req.method)
        if spec is None:
            await self._reply(conn, req, self._unknown_method(req.method))
            return
        if not conn.initialized:
            await self._reply(conn, req, invalid_request("Not initialized"))
            return
        if self.draining and req.method not in ALLOWED_WHILE_DRAINING:
            err = invalid_request(DRAINING_MESSAGE, {"reason": "serverShuttingDown"})
            await self._reply(conn, req, err)
            return
        if spec.experimental and not conn.experimental_api:
            err = invalid_request(f"{req.method} requires experimentalApi capability")
            await self._reply(conn, req, err)
            return
        raw = req.params
        if spec.params_optional and (raw is MISSING or raw is None):
            raw = {}
        params = validate_params(spec.params_model, spec.adapter, raw)
        if isinstance(params, RpcError):
            await self._reply(conn, req, params)
            return
        ctx = RequestContext(conn, req.id, self.sender)
        if spec.scope is Scope.INLINE:
            await self._reply(conn, req, await self._call(spec, ctx, params))
            return
        scope = spec.scope
        if scope is Scope.THREAD:
            key = getattr(params, "thread_id", None)
        else:
            key = SERIAL_KEY if scope is Scope.SERIAL else None
        self._spawn(self._run_handler(spec, ctx, req, params, key))

    def _load(self) -> None:
        """Run the loader once. It blocks the loop while modules import; requests that arrive
        meanwhile wait in the ingress queue, in order."""
        loader, self._loader = self._loader, None
        if loader is None:
            return
        try:
            loader()
        except Exception:
            log.exception("loading the server's methods failed")
            self._load_failed = True

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()

    async def _run_handler(
        self,
        spec: MethodSpec,
        ctx: RequestContext,
        req: Request,
        params: Any,
        key: str | None,
    ) -> None:
        if key is None:
            await self._reply(ctx.connection, req, await self._call(spec, ctx, params))
            return
        # asyncio.Lock is FIFO, and tasks reach this line in arrival order, so mutations of
        # one thread (or SERIAL requests) run one at a time in the order they were received.
        # The reply and its ``after`` work go out inside the lock: the next one starts after.
        lock = self._thread_locks.get(key)
        if lock is None:
            lock = self._thread_locks[key] = asyncio.Lock()
        try:
            async with lock:
                await self._reply(ctx.connection, req, await self._call(spec, ctx, params))
        finally:
            if not lock.locked() and self._thread_locks.get(key) is lock:
                del self._thread_locks[key]

    async def _call(self, spec: MethodSpec, ctx: RequestContext, params: Any) -> Any:
        """The handler's result, ``Reply`` or ``RpcError`` (never raises but for cancellation)."""
        try:
            result = await spec.handler(ctx, params)
        except RpcError as err:
            return err
        except Exception:
            log.exception("handler for %s failed", spec.name)
            return RpcError(INTERNAL_ERROR, f"internal error while handling {spec.name}")
        if type(result) is dict:
            return result
        if type(result) is Reply:
            result.result = _plain(result.result)
            return result
        return _plain(result)

    async def _reply(self, conn: ConnectionState, req: Request, result: Any) -> None:
        """The one reply road: exactly one response per request, then the ``after`` work."""
        if type(result) is not Reply:
            if isinstance(result, RpcError):
                await self.sender.fail(conn.id, req.id, result)
            else:
                await self.sender.respond(conn.id, req.id, result)
            return
        await self.sender.respond(conn.id, req.id, result.result)
        after = result.after
        if after is None:
            return
        try:
            pending = after()
            if pending is not None:
                await pending
        except Exception:
            # The response is out: a failure now must not become a second response.
            log.exception("the work after the reply to %s failed", req.method)

    def _unknown_method(self, method: str) -> RpcError:
        names = ", ".join(f"`{n}`" for n in ["initialize", *self.registry.names()])
        shown = method if len(method) <= 200 else method[:200] + "..."
        return invalid_request(
            f"Invalid request: unknown variant `{shown}`, expected one of {names}"
        )

    # -- handshake --------------------------------------------------------------------------
    def _initialize(self, conn: ConnectionState, req: Request) -> Any:
        if conn.initialized:
            return invalid_request("Already initialized")
        hello = parse_initialize(req.params)
        if isinstance(hello, RpcError):
            return hello
        name = hello.name
        if not name or not _is_header_value(name):
            return invalid_request(
                f"Invalid clientInfo.name: '{name}'. Must be a valid HTTP header value."
            )
        conn.client_name = name
        conn.client_version = hello.version
        conn.experimental_api = hello.experimental_api
        conn.opted_out = hello.opt_out_notification_methods
        conn.initialized = True
        return {
            "userAgent": self.identity.user_agent(name, hello.version),
            "codexHome": self.identity.codex_home,
            "platformFamily": "windows" if sys.platform == "win32" else "unix",
            "platformOs": _platform_os(),
        }

    def _on_notification(self, conn: ConnectionState, note: Notification) -> None:
        if note.method == "initialized":
            return
        log.debug("ignoring client notification %s", note.method)

    # -- lifecycle --------------------------------------------------------------------------
    def is_busy(self) -> bool:
        return bool(self._tasks) or any(check() for check in self.busy_checks)

    async def wait_idle(self) -> None:
        """Wait until no handler runs (used by the graceful drain)."""
        while self._tasks:
            await self._idle.wait()

    async def shutdown(self, timeout: float = 5.0) -> None:
        self.sender.cancel_all()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
