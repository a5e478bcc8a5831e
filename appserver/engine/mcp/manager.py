"""``McpManager``: which MCP servers each loaded thread has, and the connections behind them.

Owns the pool of connections, keyed by a server's definition (command, args, env, url,
headers...): one process (or HTTP session) per definition, shared by every thread whose
servers include it, under whatever name each gives it. A thread's servers are config.toml's
enabled ``[mcp_servers.*]`` plus those of its own ``config`` map (which win on a name clash).

Startup is in the background and never waited for: ``attach`` (thread start, resume, fork)
sends ``mcpServer/startupStatus/updated`` ``starting`` for each server not yet ready, starts
the missing connections in parallel (each under its ``startup_timeout_sec``) and returns. The
turn-start policy is the reference's: **a turn sees the tools of the servers that are ready
when each model request is built**; a server still starting is left out of that request (it
joins the next one once ready) and a turn never waits for it. ``ready`` / ``failed`` /
``cancelled`` reach every thread using the connection. A connection that failed stays failed
(calls fail cleanly) until ``reload``, or until a thread attaches anew, restarts it.

It must never block a request on a server, and never close a connection a thread still uses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from appserver.engine.mcp.config import McpServerConfig
from appserver.engine.mcp.connection import McpConnection
from appserver.engine.ports import Outbox

if TYPE_CHECKING:
    from mcp.types import ElicitRequestParams, ElicitResult

    from appserver.protocol.wire_types import (
        McpServerStartupState,
        McpServerStatusUpdatedNotification,
    )

log = logging.getLogger("appserver.mcp")

STATUS = "mcpServer/startupStatus/updated"
# How long a forwarded elicitation waits for the client before it is cancelled.
ELICIT_TIMEOUT_S = 600.0
CLIENT_CHECK_S = 1.0  # how often a waiting elicitation checks that a client still watches


@dataclass
class Caller:
    """A tool call in flight: whom an elicitation from its server is forwarded to."""

    thread_id: str
    turn_id: str | None
    server: str


class McpManager:
    def __init__(self, outbox: Outbox, configured: Mapping[str, McpServerConfig]) -> None:
        self.outbox = outbox
        self.configured: dict[str, McpServerConfig] = dict(configured)
        self._pool: dict[tuple[Any, ...], McpConnection] = {}
        self._threads: dict[str, dict[str, McpServerConfig]] = {}
        self._own: dict[str, dict[str, McpServerConfig]] = {}  # each thread's config servers
        self._callers: dict[int, list[Caller]] = {}  # id(connection) → calls in flight
        self._tasks: set[asyncio.Task[Any]] = set()
        self._approved: dict[str, set[tuple[str, str]]] = {}  # thread → (server, tool)

    # -- threads ----------------------------------------------------------------------------
    def servers_of(self, thread_id: str) -> dict[str, McpServerConfig]:
        return dict(self._threads.get(thread_id, {}))

    async def attach(
        self, thread_id: str, own: Mapping[str, McpServerConfig] | None = None
    ) -> None:
        """Give ``thread_id`` its servers and start those not running; never waits."""
        self._own[thread_id] = dict(own or {})
        servers = {
            name: cfg for name, cfg in {**self.configured, **(own or {})}.items() if cfg.enabled
        }
        self._threads[thread_id] = servers
        await self._bring_up(thread_id, servers, restart_failed=True)

    async def _bring_up(
        self, thread_id: str, servers: Mapping[str, McpServerConfig], *, restart_failed: bool
    ) -> None:
        fresh: list[McpConnection] = []
        for name, cfg in servers.items():
            conn = self._pool.get(cfg.definition())
            if conn is None or (restart_failed and conn.status in ("failed", "cancelled")):
                if conn is not None:
                    self._spawn(conn.close())
                conn = self._new(cfg)
                fresh.append(conn)
            await self._notify(thread_id, name, conn)
        for conn in fresh:
            conn.start()
        self._close_unused()

    def _new(self, cfg: McpServerConfig) -> McpConnection:
        conn = McpConnection(cfg, on_status=self._status_changed, on_elicit=self._elicit)
        self._pool[cfg.definition()] = conn
        return conn

    async def detach(self, thread_id: str) -> None:
        """The thread unloaded: connections no loaded thread uses any more are stopped."""
        self._threads.pop(thread_id, None)
        self._own.pop(thread_id, None)
        self._approved.pop(thread_id, None)
        self._close_unused()

    def _close_unused(self) -> None:
        used = {cfg.definition() for s in self._threads.values() for cfg in s.values()}
        used |= {cfg.definition() for cfg in self.configured.values() if cfg.enabled}
        for key in [k for k in self._pool if k not in used]:
            self._spawn(self._pool.pop(key).close())

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reload(self, configured: Mapping[str, McpServerConfig]) -> None:
        """config.toml read again: servers added start in every loaded thread, removed or
        changed ones stop, failed ones start again."""
        self.configured = dict(configured)
        for thread_id in list(self._threads):
            own = self._own.get(thread_id, {})
            servers = {n: c for n, c in {**self.configured, **own}.items() if c.enabled}
            self._threads[thread_id] = servers
            await self._bring_up(thread_id, servers, restart_failed=True)
        self._close_unused()

    def start_configured(self) -> None:
        """Start config.toml's servers with no thread (``mcpServerStatus/list``)."""
        for cfg in self.configured.values():
            if cfg.enabled and cfg.definition() not in self._pool:
                self._new(cfg).start()

    def approve_for_session(self, thread_id: str, server: str, tool: str) -> None:
        self._approved.setdefault(thread_id, set()).add((server, tool))

    def approved_for_session(self, thread_id: str, server: str, tool: str) -> bool:
        return (server, tool) in self._approved.get(thread_id, set())

    # -- lookups ----------------------------------------------------------------------------
    def connection(self, cfg: McpServerConfig) -> McpConnection | None:
        return self._pool.get(cfg.definition())

    def server(self, thread_id: str | None, name: str) -> McpServerConfig | None:
        if thread_id is not None and thread_id in self._threads:
            return self._threads[thread_id].get(name)
        cfg = self.configured.get(name)
        return cfg if cfg is not None and cfg.enabled else None

    def ready_servers(self, thread_id: str) -> list[tuple[str, McpServerConfig, McpConnection]]:
        out = []
        for name, cfg in sorted(self._threads.get(thread_id, {}).items()):
            conn = self._pool.get(cfg.definition())
            if conn is not None and conn.status == "ready":
                out.append((name, cfg, conn))
        return out

    # -- status -----------------------------------------------------------------------------
    async def _notify(self, thread_id: str, name: str, conn: McpConnection) -> None:
        status = conn.status
        params: McpServerStatusUpdatedNotification = {
            "name": name,
            "status": cast("McpServerStartupState", status),
            "threadId": thread_id,
        }
        if conn.error and status == "failed":
            params["error"] = conn.error
        try:
            await self.outbox.notify_thread(thread_id, "mcpServer/startupStatus/updated", params)
        except Exception:
            log.exception("could not send %s", STATUS)

    async def _status_changed(self, conn: McpConnection) -> None:
        key = conn.config.definition()
        if self._pool.get(key) is not conn:
            return  # replaced or stopped: its threads use another connection now
        for thread_id, servers in list(self._threads.items()):
            for name, cfg in servers.items():
                if cfg.definition() == key:
                    await self._notify(thread_id, name, conn)

    # -- elicitation ------------------------------------------------------------------------
    def calling(self, conn: McpConnection, caller: Caller) -> None:
        self._callers.setdefault(id(conn), []).append(caller)

    def done_calling(self, conn: McpConnection, caller: Caller) -> None:
        callers = self._callers.get(id(conn), [])
        if caller in callers:
            callers.remove(caller)
        if not callers:
            self._callers.pop(id(conn), None)

    async def _elicit(self, conn: McpConnection, params: ElicitRequestParams) -> ElicitResult:
        """A server asks the user something: forwarded to the thread whose call is in flight
        on that connection (or any thread using it) as ``mcpServer/elicitation/request``;
        no thread, an error answer, or no answer within ``ELICIT_TIMEOUT_S`` is a cancel."""
        from mcp.types import ElicitResult

        callers = self._callers.get(id(conn), [])
        caller = callers[-1] if callers else self._any_user(conn)
        if caller is None:
            return ElicitResult(action="cancel")
        wire = elicitation_params(caller, params)
        try:
            pending = await self.outbox.request_thread(caller.thread_id, wire.pop("_method"), wire)
            # Past the call's own timeout an answer is of no use: the call has failed.
            limit = min(ELICIT_TIMEOUT_S, conn.config.tool_timeout_s)
            answer = await self._answer(caller.thread_id, pending, limit)
        except asyncio.CancelledError:
            raise
        except Exception:
            return ElicitResult(action="cancel")
        return elicit_result(answer)

    async def _answer(self, thread_id: str, pending: Any, limit_s: float) -> Any:
        """The client's answer; a timeout, or no client left watching the thread (checked
        every ``CLIENT_CHECK_S``), raises: the server then gets a cancel, never silence."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while True:
            try:
                return await asyncio.wait_for(asyncio.shield(pending), CLIENT_CHECK_S)
            except TimeoutError:
                if not self.outbox.subscribers(thread_id) or loop.time() > deadline:
                    if hasattr(pending, "cancel"):
                        pending.cancel()
                    raise

    def _any_user(self, conn: McpConnection) -> Caller | None:
        key = conn.config.definition()
        for thread_id, servers in self._threads.items():
            for name, cfg in servers.items():
                if cfg.definition() == key:
                    return Caller(thread_id, None, name)
        return None

    # -- stop -------------------------------------------------------------------------------
    async def close(self) -> None:
        """Stop every server (their process groups end with them), in parallel, bounded."""
        conns = list(self._pool.values())
        self._pool.clear()
        if conns:
            await asyncio.gather(*(c.close() for c in conns), return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()


def elicitation_params(caller: Caller, params: Any) -> dict[str, Any]:
    """``mcpServer/elicitation/request`` params of an SDK elicitation (form or url)."""
    wire: dict[str, Any] = {
        "_method": "mcpServer/elicitation/request",
        "threadId": caller.thread_id,
        "turnId": caller.turn_id,
        "serverName": caller.server,
        "message": params.message,
        "_meta": None,
    }
    if getattr(params, "mode", "form") == "url":
        wire.update(mode="url", url=params.url, elicitationId=params.elicitation_id)
        return wire
    schema = params.requested_schema if isinstance(params.requested_schema, dict) else {}
    wire.update(mode="form", requestedSchema=form_schema(schema))
    return wire


_PRIMITIVE_KEYS = {
    "type",
    "title",
    "description",
    "default",
    "enum",
    "enumNames",
    "oneOf",
    "items",
    "format",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
}


def form_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A server's requested schema in the shape the protocol's ``McpElicitationSchema``
    allows (an object of primitive properties; keys it does not know are dropped)."""
    props = schema.get("properties")
    out_props: dict[str, Any] = {}
    if isinstance(props, Mapping):
        for key, prop in props.items():
            if isinstance(prop, Mapping):
                out_props[str(key)] = {k: v for k, v in prop.items() if k in _PRIMITIVE_KEYS}
    out: dict[str, Any] = {"type": "object", "properties": out_props}
    required = schema.get("required")
    if isinstance(required, list):
        out["required"] = [str(r) for r in required]
    return out


def elicit_result(answer: Any) -> ElicitResult:
    """The client's answer as the SDK's result; anything but accept/decline is a cancel."""
    from mcp.types import ElicitResult

    action = answer.get("action") if isinstance(answer, dict) else None
    if action == "accept":
        content = answer.get("content")
        return ElicitResult(action="accept", content=content if isinstance(content, dict) else {})
    if action == "decline":
        return ElicitResult(action="decline")
    return ElicitResult(action="cancel")
