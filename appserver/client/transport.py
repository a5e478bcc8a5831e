"""Client transports: one message-dict interface over a child process, WebSocket or in-process.

Owns ``Transport`` (``send`` a message dict, ``receive`` the next one or ``None`` once the
peer is gone, ``close``) and its three implementations, plus ``ConnectError`` whose message is
one line for the user. The stdio and WebSocket transports carry JSON exactly as framed on the
wire; the in-process transport has no JSON at all, so it rebuilds the equivalent dicts from the
embedded client's futures and events. Its server is started by a ``StartServer`` the caller
gives (the top-level CLI builds the ``App``). This module must never import the server,
interpret protocol methods, print, or correlate request ids (``session`` does that).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from appserver.protocol.envelope import ErrorReply, Notification, Response
from appserver.protocol.errors import INTERNAL_ERROR, RpcError

if TYPE_CHECKING:
    from appserver.transports.in_process import InProcessClientHandle

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
CLOSE_TIMEOUT = 5.0
CONNECT_TIMEOUT = 10.0

Warn = Callable[[str], None]


class ConnectError(Exception):
    """The connection could not be made or set up; the message is one line for the user."""


@dataclass(frozen=True)
class EmbeddedServer:
    """An in-process server, started for this client: the handle that drives it, and its home
    (for messages)."""

    handle: InProcessClientHandle
    home: Path


StartServer = Callable[[Path | None, list[str]], Awaitable[EmbeddedServer]]
"""Starts an in-process server over a home (None: the default one) with ``-c`` overrides;
raises ``ConnectError`` when it cannot. The top-level CLI provides it."""


class Transport(Protocol):
    description: str

    async def send(self, msg: dict[str, Any]) -> None: ...

    async def receive(self) -> dict[str, Any] | None: ...

    async def close(self) -> None: ...

    def failure_detail(self) -> str:
        """Extra context once the peer has gone (e.g. the child's last stderr lines)."""
        ...


def _decode(data: bytes | str, warn: Warn) -> dict[str, Any] | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data if isinstance(data, str) else data.decode(errors="replace")
        warn(f"ignored a message that is not JSON: {text.strip()[:200]!r}")
        return None
    if not isinstance(value, dict):
        warn(f"ignored a message that is not a JSON object: {str(value)[:200]}")
        return None
    return value


class StdioTransport:
    """A server started as a child process, speaking JSONL over its stdin and stdout."""

    def __init__(self, proc: asyncio.subprocess.Process, description: str, warn: Warn) -> None:
        self.proc = proc
        self.description = description
        self._warn = warn
        self._stderr_tail: deque[str] = deque(maxlen=20)
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def spawn(cls, command: str, warn: Warn) -> StdioTransport:
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise ConnectError(f"invalid --server-cmd: {exc}") from None
        if not argv:
            raise ConnectError("--server-cmd is empty")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                limit=MAX_MESSAGE_BYTES,
            )
        except OSError as exc:
            raise ConnectError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        return cls(proc, f"server process {argv[0]} (pid {proc.pid})", warn)

    async def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self._stderr_tail.append(line.decode(errors="replace").rstrip())

    async def send(self, msg: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(orjson.dumps(msg) + b"\n")
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the reader sees EOF and reports the lost connection

    async def receive(self) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        while True:
            try:
                line = await self.proc.stdout.readline()
            except (ValueError, asyncio.LimitOverrunError):
                self._warn(f"the server sent a line longer than {MAX_MESSAGE_BYTES} bytes")
                return None
            if not line:
                await self._settle()
                return None
            if not line.strip():
                continue
            msg = _decode(line, self._warn)
            if msg is not None:
                return msg

    async def _settle(self) -> None:
        """After EOF: give the child a moment to exit and finish its stderr (for the report)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.proc.wait()), CLOSE_TIMEOUT)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._stderr_task), CLOSE_TIMEOUT)

    async def close(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), CLOSE_TIMEOUT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.proc.kill()
                await self.proc.wait()
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(self._stderr_task, CLOSE_TIMEOUT)

    def failure_detail(self) -> str:
        lines = [line for line in self._stderr_tail if line]
        code = self.proc.returncode
        head = f"server exited with code {code}" if code is not None else ""
        tail = "; ".join(lines[-3:])
        return ": ".join(part for part in (head, tail) if part)


class WebSocketTransport:
    """A server at a ``ws://`` URL; one text frame per message."""

    def __init__(self, ws: Any, url: str, warn: Warn) -> None:
        self.ws = ws
        self.description = url
        self._warn = warn

    @classmethod
    async def connect(cls, url: str, token: str | None, warn: Warn) -> WebSocketTransport:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

        headers = {"Authorization": f"Bearer {token}"} if token else None
        try:
            ws = await connect(
                url,
                additional_headers=headers,
                max_size=MAX_MESSAGE_BYTES,
                open_timeout=CONNECT_TIMEOUT,
            )
        except InvalidURI:
            raise ConnectError(f"invalid WebSocket URL {url!r}") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            hint = " (bad or missing token?)" if status in (401, 403) else ""
            raise ConnectError(f"{url} refused the connection: HTTP {status}{hint}") from None
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            errno = getattr(exc, "errno", None)
            strerror = getattr(exc, "strerror", None)
            if isinstance(errno, int) and errno > 0:
                reason = os.strerror(errno)  # not asyncio's "Connect call failed (…)"
            else:
                reason = strerror or str(exc) or type(exc).__name__
            raise ConnectError(f"cannot connect to {url}: {reason}") from None
        return cls(ws, url, warn)

    async def send(self, msg: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            await self.ws.send(orjson.dumps(msg).decode())

    async def receive(self) -> dict[str, Any] | None:
        from websockets.exceptions import ConnectionClosed

        while True:
            try:
                frame = await self.ws.recv()
            except ConnectionClosed:
                return None
            msg = _decode(frame, self._warn)
            if msg is not None:
                return msg

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.ws.close(), CLOSE_TIMEOUT)

    def failure_detail(self) -> str:
        code = getattr(self.ws, "close_code", None)
        reason = getattr(self.ws, "close_reason", None) or ""
        return f"closed with code {code} {reason}".strip() if code is not None else ""


class InProcessTransport:
    """A whole server in this event loop, driven through ``InProcessClientHandle``.

    Outgoing dicts become handle calls (requests keep the caller's ids); replies and events
    come back as the dicts the same server would have written on a wire.
    """

    def __init__(self, handle: InProcessClientHandle, description: str, warn: Warn) -> None:
        self.handle = handle
        self.description = description
        self._warn = warn
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._pump = asyncio.create_task(self._events())

    @classmethod
    async def start(
        cls, start_server: StartServer, home: Path | None, overrides: list[str], warn: Warn
    ) -> InProcessTransport:
        _quiet_server_logs()
        server = await start_server(home, overrides)
        return cls(server.handle, f"in-process server (home {server.home})", warn)

    async def _events(self) -> None:
        from appserver.transports.in_process import Lagged, ServerNotification, ServerRequest

        while True:
            try:
                event = await self.handle.next_event(timeout=None)
            except BrokenPipeError:
                self._inbox.put_nowait(None)
                return
            if isinstance(event, ServerRequest):
                self._inbox.put_nowait(
                    {"id": event.id, "method": event.method, "params": event.params}
                )
            elif isinstance(event, ServerNotification):
                self._inbox.put_nowait({"method": event.method, "params": event.params})
            elif isinstance(event, Lagged):
                self._warn(f"{event.skipped} notification(s) dropped: the client fell behind")

    def _reply_ready(self, rid: Any, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None:
            self._inbox.put_nowait({"id": rid, "result": fut.result()})
        elif isinstance(exc, RpcError):
            self._inbox.put_nowait({"id": rid, "error": exc.to_wire()})
        else:
            self._inbox.put_nowait(
                {"id": rid, "error": {"code": INTERNAL_ERROR, "message": str(exc)}}
            )

    async def send(self, msg: dict[str, Any]) -> None:
        from appserver.transports.in_process import WouldBlock

        for _ in range(1000):
            try:
                self._submit(msg)
                return
            except WouldBlock:
                await asyncio.sleep(0.01)  # back-pressure: the server's queue is full
            except BrokenPipeError:
                return  # the pump reports the closed runtime
            except RpcError as err:  # a duplicate id: answer as the server would
                self._inbox.put_nowait({"id": msg.get("id"), "error": err.to_wire()})
                return
        self._warn("the in-process server stayed overloaded; a message was not sent")

    def _submit(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if method is not None and "id" in msg:
            rid = msg["id"]
            fut = self.handle.submit_request(method, msg.get("params"), request_id=rid)
            fut.add_done_callback(lambda f: self._reply_ready(rid, f))
        elif method is not None:
            self.handle.submit_message(Notification(method, msg.get("params")))
        elif "error" in msg:
            err = msg["error"]
            self.handle.submit_message(
                ErrorReply(msg["id"], err["code"], err["message"], err.get("data"))
            )
        else:
            self.handle.submit_message(Response(msg["id"], msg.get("result")))

    async def receive(self) -> dict[str, Any] | None:
        return await self._inbox.get()

    async def close(self) -> None:
        await self.handle.shutdown()
        self._pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._pump

    def failure_detail(self) -> str:
        return ""


def _quiet_server_logs() -> None:
    """The embedded server logs errors only: its warnings reach us as ``configWarning``."""
    logger = logging.getLogger("appserver")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("appserver server: %(levelname)s %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.ERROR)
        logger.propagate = False
