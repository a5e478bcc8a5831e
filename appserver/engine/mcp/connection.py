"""One running MCP server: a client session of the official ``mcp`` SDK over its stdio or
streamable-HTTP client, owned by one background task.

Owns the session's life: ``start`` spawns the task, which connects under the server's
``startup_timeout_sec`` (initialize, then tools, resources and resource templates listed),
reports ``ready`` or ``failed`` through ``on_status``, then holds the session open until
``close``. Leaving the task closes the SDK's transport, which for stdio closes the server's
stdin and then ends its whole process group (the SDK starts it in a session of its own).
Calls (``call_tool``, ``read_resource``) run from any task. A transport that closes under a
call (a crash) or a server that writes something other than JSON-RPC on stdout marks this
server ``failed``; nothing restarts it here (the manager does, on reload or for a new thread).

It must never let an SDK exception escape as anything but ``McpCallError`` or a ``failed``
status, never log a header or an environment value, and never block the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import weakref
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TextIO

from appserver.engine.mcp.config import McpServerConfig
from appserver.store import redaction

if TYPE_CHECKING:
    from mcp import ClientSession
    from mcp.types import CallToolResult, ElicitRequestParams, ElicitResult, ErrorData

log = logging.getLogger("appserver.mcp")

# How long ``close`` waits for the SDK to stop a server before cancelling its task.
CLOSE_TIMEOUT_S = 3.0

StatusHook = Callable[["McpConnection"], Awaitable[None]]
ElicitHook = Callable[["McpConnection", "ElicitRequestParams"], Awaitable["ElicitResult"]]
ProgressHook = Callable[[float, float | None, str | None], Awaitable[None]]


_SDK_READY = False
# One import per event loop at most until it has finished once: a future of a loop that has
# closed since (a test's) would never complete, so each loop waits on its own.
_SDK_IMPORTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Future[None]] = (
    weakref.WeakKeyDictionary()
)


def _import_sdk() -> None:
    import importlib

    for name in ("mcp", "mcp.client.stdio", "mcp.client.streamable_http", "mcp.types"):
        importlib.import_module(name)


async def sdk_loaded() -> None:
    """Import the ``mcp`` SDK once, in a worker thread: the import takes about a second, and
    done on the event loop it would hold every request (``thread/start`` included) that long."""
    global _SDK_READY
    if _SDK_READY:
        return
    loop = asyncio.get_running_loop()
    future = _SDK_IMPORTS.get(loop)
    if future is None:
        future = _SDK_IMPORTS[loop] = asyncio.ensure_future(asyncio.to_thread(_import_sdk))
    await asyncio.shield(future)
    _SDK_READY = True


class McpCallError(Exception):
    """A call that did not return a result: timed out, transport closed, protocol error."""


def _stderr() -> TextIO:
    """Where a stdio server's stderr goes: ours when it is a real file, else nowhere."""
    try:
        sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return open(os.devnull, "w")
    return sys.stderr


class McpConnection:
    def __init__(
        self, config: McpServerConfig, *, on_status: StatusHook, on_elicit: ElicitHook
    ) -> None:
        self.config = config
        self.status = "starting"  # starting | ready | failed | cancelled
        self.error: str | None = None
        self.tools: list[dict[str, Any]] = []
        self.resources: list[dict[str, Any]] = []
        self.templates: list[dict[str, Any]] = []
        self.server_info: dict[str, Any] | None = None
        self.capabilities: dict[str, Any] | None = None
        self.settled = asyncio.Event()  # set once status leaves "starting"
        self._on_status = on_status
        self._on_elicit = on_elicit
        self._session: ClientSession | None = None
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- life -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"mcp:{self.config.name}")

    async def close(self) -> None:
        """Stop the server (bounded); a server still starting ends ``cancelled``."""
        self._closing.set()
        task = self._task
        if task is None or task.done():
            return
        if self.status == "starting":
            task.cancel()  # nothing to wind down gracefully yet
        done, _ = await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
        if not done:
            task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)

    async def _run(self) -> None:
        try:
            await sdk_loaded()
            import anyio
        except Exception as exc:
            await self._set("failed", f"the MCP SDK cannot be loaded: {_why(exc)}")
            return
        try:
            async with contextlib.AsyncExitStack() as stack:
                session = await self._open(stack)
                # Inside the transport's contexts, so the cancel scopes nest (anyio).
                with anyio.fail_after(self.config.startup_timeout_s):
                    await self._handshake(session)
                if self.status == "starting":
                    await self._set("ready")
                await self._closing.wait()
                self._session = None
        except asyncio.CancelledError:
            if self.status == "starting":
                await self._set("cancelled", "cancelled while starting")
            raise
        except BaseException as exc:  # the SDK raises groups, OSError, McpError, ...
            if self._closing.is_set() and self.status != "starting":
                return
            if isinstance(_root(exc), TimeoutError) and self.status == "starting":
                why = f"did not start within {self.config.startup_timeout_s:g} s"
            else:
                why = f"failed: {_why(exc)}"
            await self._set("failed", f"MCP server `{self.config.name}` {why}")
        finally:
            self._session = None
            if self.status == "ready":
                self.status = "cancelled"

    async def _open(self, stack: contextlib.AsyncExitStack) -> ClientSession:
        """Spawn the process (or open the HTTP client) and the SDK session over it."""
        from mcp import ClientSession
        from mcp.types import Implementation

        cfg = self.config
        redaction.KNOWN.register(*cfg.secret_values())  # never in a log or a rollout line
        if cfg.transport == "stdio":
            from mcp import StdioServerParameters, stdio_client

            assert cfg.command is not None
            params = StdioServerParameters(
                command=cfg.command, args=list(cfg.args), env=cfg.process_env(), cwd=cfg.cwd
            )
            read, write = await stack.enter_async_context(stdio_client(params, errlog=_stderr()))
        else:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            missing = cfg.missing_token()
            if missing is not None:
                raise McpCallError(f"the bearer token variable `{missing}` is not set")
            assert cfg.url is not None
            client = await stack.enter_async_context(
                create_mcp_http_client(headers=cfg.request_headers())
            )
            read, write = await stack.enter_async_context(
                streamable_http_client(cfg.url, http_client=client)
            )
        session: ClientSession = await stack.enter_async_context(
            ClientSession(
                read,
                write,
                elicitation_callback=self._elicit,
                message_handler=self._message,
                client_info=Implementation(name="appserver", version="0.1.0"),
            )
        )
        return session

    async def _handshake(self, session: ClientSession) -> None:
        """Initialize, then list the tools, resources and resource templates."""
        init = await session.initialize()
        self.server_info = _dump(init.server_info)
        self.capabilities = _dump(init.capabilities)
        caps = init.capabilities
        self.tools = await _all_tools(session) if caps.tools is not None else []
        if caps.resources is not None:
            with contextlib.suppress(Exception):
                listed = await session.list_resources()
                self.resources = [_dump(r) for r in listed.resources]
            with contextlib.suppress(Exception):
                templates = await session.list_resource_templates()
                self.templates = [_dump(t) for t in templates.resource_templates]
        self._session = session

    async def _set(self, status: str, error: str | None = None) -> None:
        if status == self.status and error == self.error:
            return
        self.status, self.error = status, error
        if status != "starting":
            self.settled.set()
        if error:
            log.warning("%s", error)
        try:
            await self._on_status(self)
        except Exception:
            log.exception("MCP status hook failed")

    async def fail(self, error: str) -> None:
        """Mark this server failed (a crash seen by a call, garbage on stdout) and stop it."""
        if self.status in ("failed", "cancelled"):
            return
        await self._set("failed", error)
        self._closing.set()

    # -- SDK callbacks ------------------------------------------------------------------------
    async def _message(self, message: Any) -> None:
        if isinstance(message, Exception):
            await self.fail(
                f"MCP server `{self.config.name}` sent something that is not JSON-RPC; "
                "it is stopped"
            )

    async def _elicit(self, context: Any, params: ElicitRequestParams) -> ElicitResult | ErrorData:
        from mcp.types import ElicitResult

        try:
            return await self._on_elicit(self, params)
        except Exception:
            log.exception("elicitation from MCP server %s failed", self.config.name)
            return ElicitResult(action="cancel")

    # -- calls --------------------------------------------------------------------------------
    def _live(self) -> ClientSession:
        session = self._session
        if session is None or self.status != "ready":
            why = self.error or f"MCP server `{self.config.name}` is {self.status}"
            raise McpCallError(why)
        return session

    async def call_tool(
        self,
        tool: str,
        arguments: dict[str, Any] | None,
        *,
        timeout_s: float | None = None,
        on_progress: ProgressHook | None = None,
    ) -> CallToolResult:
        from mcp import MCPError

        session = self._live()

        async def relay(progress: float, total: float | None, message: str | None) -> None:
            if on_progress is not None:
                await on_progress(progress, total, message)

        try:
            return await session.call_tool(
                tool,
                arguments,
                read_timeout_seconds=timeout_s or self.config.tool_timeout_s,
                progress_callback=relay,
            )
        except MCPError as exc:
            if exc.error.code == -32001:  # the SDK's request timeout (cancelled on the server)
                raise McpCallError(
                    f"timed out after {timeout_s or self.config.tool_timeout_s:g} s"
                ) from None
            if "closed" in exc.error.message.lower():
                await self.fail(f"MCP server `{self.config.name}` exited: {exc.error.message}")
            raise McpCallError(exc.error.message) from None
        except Exception as exc:
            raise McpCallError(_why(exc)) from None

    async def read_resource(self, uri: str) -> list[dict[str, Any]]:
        from mcp import MCPError

        session = self._live()
        try:
            result = await session.read_resource(uri)
        except MCPError as exc:
            raise McpCallError(exc.error.message) from None
        except Exception as exc:
            raise McpCallError(_why(exc)) from None
        return [_dump(c) for c in result.contents]


async def _all_tools(session: ClientSession) -> list[dict[str, Any]]:
    from mcp.types import PaginatedRequestParams

    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):  # bounded: a server that pages forever gets its first 100 pages
        params = PaginatedRequestParams(cursor=cursor) if cursor else None
        page = await session.list_tools(params=params)
        tools += [_dump(t) for t in page.tools]
        cursor = page.next_cursor
        if not cursor:
            break
    return tools


def _dump(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = model.model_dump(by_alias=True, mode="json", exclude_none=True)
    return out


def _root(exc: BaseException) -> BaseException:
    """An exception group unwrapped to its first leaf."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _why(exc: BaseException) -> str:
    """One line for an SDK failure (exception groups unwrapped to their first cause)."""
    exc = _root(exc)
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
