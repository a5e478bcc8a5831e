"""One client surface over the three transports, for tests whose body must not care which.

``open_client(transport, home, ...)`` yields a ``WireClient``: ``send`` a message dict,
``send_raw`` bytes (decoded by the same transport helper in-process), ``request`` and wait for
the reply, ``next_message`` / ``wait_for`` with timeouts (messages not matching stay buffered),
``expect_silence`` to assert nothing arrives before a later reply. The stdio, WebSocket and
Unix-socket clients run the real CLI in a subprocess; the in-process client runs the same core
in this event loop. Every wait is bounded. ``unix`` (WebSocket over ``--listen unix://PATH``,
with the HTTP upgrade the Codex TUI sends) is not in ``TRANSPORTS``: test modules that cover it
add it with ``SOCKET_TRANSPORTS``.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import websockets
from websockets.asyncio.client import unix_connect
from websockets.asyncio.connection import Connection
from websockets.protocol import Protocol, Side, State

from appserver.protocol.envelope import Message, Request
from appserver.server.app import App
from appserver.server.config import load_config
from appserver.transports.decode import decode_message
from appserver.transports.in_process import (
    InProcessClientHandle,
    Lagged,
    ServerNotification,
    ServerRequest,
)
from tests.support.wire_recorder import RECORDER

TIMEOUT = 15.0
TRANSPORTS = ["in_process", "stdio", "websocket"]
SOCKET_TRANSPORTS = [*TRANSPORTS, "unix"]


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("OPENAI_API_KEY", None)
    env["PYTHONUNBUFFERED"] = "1"
    if extra:
        env.update(extra)
    return env


class WireClient:
    """Base: a buffer of received messages and the waits over it."""

    def __init__(self) -> None:
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.buffer: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.seen: list[dict[str, Any]] = []

    # transport-specific
    async def send(self, msg: dict[str, Any]) -> None:
        raise NotImplementedError

    async def send_raw(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def _received(self, msg: dict[str, Any]) -> None:
        RECORDER.received(self, msg)
        self.seen.append(msg)
        self.inbox.put_nowait(msg)

    async def next_message(self, timeout: float = TIMEOUT) -> dict[str, Any]:
        if self.buffer:
            return self.buffer.pop(0)
        return await asyncio.wait_for(self.inbox.get(), timeout)

    async def wait_for(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = TIMEOUT
    ) -> dict[str, Any]:
        for i, msg in enumerate(self.buffer):
            if pred(msg):
                return self.buffer.pop(i)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("no matching message")
            msg = await asyncio.wait_for(self.inbox.get(), remaining)
            if pred(msg):
                return msg
            self.buffer.append(msg)

    async def reply_to(self, request_id: Any, timeout: float = TIMEOUT) -> dict[str, Any]:
        return await self.wait_for(
            lambda m: (
                "method" not in m
                and m.get("id") == request_id
                and type(m.get("id")) is type(request_id)
            ),
            timeout,
        )

    async def notification(self, method: str, timeout: float = TIMEOUT) -> dict[str, Any]:
        return await self.wait_for(lambda m: m.get("method") == method and "id" not in m, timeout)

    async def request(
        self, method: str, params: Any = None, *, request_id: Any = None, omit_params: bool = False
    ) -> dict[str, Any]:
        rid = next(self._ids) if request_id is None else request_id
        msg: dict[str, Any] = {"id": rid, "method": method}
        if not omit_params:
            msg["params"] = {} if params is None else params
        await self.send(msg)
        return await self.reply_to(rid)

    async def call(self, method: str, params: Any = None) -> Any:
        reply = await self.request(method, params)
        assert "result" in reply, reply
        return reply["result"]

    async def initialize(self, **capabilities: Any) -> dict[str, Any]:
        params: dict[str, Any] = {"clientInfo": {"name": "test_client", "version": "1.2.3"}}
        if capabilities:
            params["capabilities"] = capabilities
        reply = await self.request("initialize", params)
        await self.send({"method": "initialized"})
        return reply


class InProcessWire(WireClient):
    def __init__(self, handle: InProcessClientHandle, app: App) -> None:
        super().__init__()
        self.handle = handle
        self.app = app
        self._pump = asyncio.create_task(self._events())
        handle.on_raw_response = self._received

    async def _events(self) -> None:
        while True:
            try:
                ev = await self.handle.next_event(timeout=None)
            except BrokenPipeError:
                return
            if isinstance(ev, ServerNotification):
                self._received({"method": ev.method, "params": ev.params})
            elif isinstance(ev, ServerRequest):
                self._received({"id": ev.id, "method": ev.method, "params": ev.params})
            elif isinstance(ev, Lagged):
                self._received({"lagged": ev.skipped})

    async def send(self, msg: dict[str, Any]) -> None:
        await self.send_raw(orjson.dumps(msg))

    async def send_raw(self, data: bytes) -> None:
        RECORDER.sent_raw(self, data)
        for line in data.split(b"\n"):
            decoded: Message | None = decode_message(line, self.handle.connection.id)
            if decoded is not None:
                self.handle.submit_message(decoded)

    async def close(self) -> None:
        self._pump.cancel()
        await self.handle.shutdown()


class StdioWire(WireClient):
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        super().__init__()
        self.proc = proc
        self.stderr_lines: list[str] = []
        self._reader = asyncio.create_task(self._read())
        self._err = asyncio.create_task(self._read_err())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            self._received(orjson.loads(line))

    async def _read_err(self) -> None:
        assert self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            self.stderr_lines.append(line.decode(errors="replace"))

    async def send(self, msg: dict[str, Any]) -> None:
        await self.send_raw(orjson.dumps(msg) + b"\n")

    async def send_raw(self, data: bytes) -> None:
        data = data if data.endswith(b"\n") else data + b"\n"
        RECORDER.sent_raw(self, data, stream=True)
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        await self.proc.stdin.drain()

    async def wait_closed(self, timeout: float = TIMEOUT) -> int:
        """Close stdin, wait for the exit and for stdout and stderr to be read to their ends."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await asyncio.wait_for(asyncio.gather(self._reader, self._err), timeout)
        return code

    async def close(self) -> None:
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
        self._err.cancel()


class WebSocketWire(WireClient):
    def __init__(self, ws: Connection) -> None:
        super().__init__()
        self.ws = ws
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in self.ws:
                self._received(orjson.loads(frame))

    async def send(self, msg: dict[str, Any]) -> None:
        RECORDER.sent(self, msg)
        await self.ws.send(orjson.dumps(msg).decode())

    async def send_raw(self, data: bytes) -> None:
        # A text frame is UTF-8 (invalid bytes go out replaced) and is one message whatever
        # newlines it holds: the recorder notes it only if the server can decode it too.
        text = data.decode(errors="replace")
        with contextlib.suppress(orjson.JSONDecodeError):
            RECORDER.sent(self, orjson.loads(text))
        await self.ws.send(text)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "appserver", *args]


async def spawn_stdio(
    home: Path, *extra: str, env: dict[str, str] | None = None
) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *cli_argv("serve", "--stdio", "--home", str(home), "--log-level", "info", *extra),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=server_env(env),
        limit=2**27,
    )


class WsServer:
    """The real CLI serving WebSocket on 127.0.0.1 with a kernel-chosen port."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str) -> None:
        self.proc = proc
        self.url = url
        self.stderr_lines: list[str] = []
        self.stderr_ended = False
        self._new_line = asyncio.Condition()
        self._err = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        assert self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            async with self._new_line:
                if line:
                    self.stderr_lines.append(line.decode(errors="replace"))
                else:
                    self.stderr_ended = True
                self._new_line.notify_all()
            if not line:
                return

    async def wait_stderr(self, text: str, timeout: float = TIMEOUT) -> str:
        """The first stderr line containing ``text``, waiting for it (bounded)."""

        def found() -> str | None:
            return next((line for line in self.stderr_lines if text in line), None)

        async def wait() -> str:
            async with self._new_line:
                while (line := found()) is None:
                    if self.stderr_ended:
                        raise AssertionError(f"server stderr ended without {text!r}")
                    await self._new_line.wait()
                return line

        return await asyncio.wait_for(wait(), timeout)

    @property
    def http_base(self) -> str:
        return self.url.replace("ws://", "http://")

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._err.cancel()


async def start_ws_server(
    home: Path,
    *extra: str,
    env: dict[str, str] | None = None,
    launcher: list[str] | None = None,
    listen: tuple[str, ...] = ("--ws", "127.0.0.1:0"),
) -> WsServer:
    """``launcher`` replaces ``python -m appserver`` (e.g. ``python -c SCRIPT`` running the CLI);
    ``listen`` the listener options (``("--listen", "unix://PATH")`` for a Unix socket)."""
    args = ("serve", *listen, "--home", str(home), *extra)
    proc = await asyncio.create_subprocess_exec(
        *(cli_argv(*args) if launcher is None else [*launcher, *args]),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=server_env(env),
    )
    assert proc.stderr is not None
    seen: list[str] = []

    async def find_url() -> str:
        assert proc.stderr is not None
        while True:
            line = (await proc.stderr.readline()).decode()
            if not line:
                raise RuntimeError("server exited: " + "".join(seen))
            seen.append(line)
            m = re.search(r"listening on: ((?:ws|unix)://\S+)", line)
            if m:
                return m.group(1)

    url = await asyncio.wait_for(find_url(), TIMEOUT)
    server = WsServer(proc, url)
    server.stderr_lines.extend(seen)
    return server


async def ws_connect(url: str, token: str | None = None, **kw: Any) -> WebSocketWire:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    ws = await websockets.connect(
        url, additional_headers=headers, max_size=2**26, compression=None, **kw
    )
    return WebSocketWire(ws)


async def unix_ws_connect(path: str, *, raw: bool = False) -> WebSocketWire:
    """A WebSocket client over the Unix socket at ``path``: with the HTTP upgrade the Codex
    TUI sends (``GET /rpc``), or with ``raw`` frames from the first byte (no upgrade)."""
    if not raw:
        ws = await unix_connect(path, uri="ws://localhost/rpc", max_size=2**26, compression=None)
        return WebSocketWire(ws)
    loop = asyncio.get_running_loop()
    protocol = Protocol(Side.CLIENT, state=State.OPEN, max_size=2**26)
    _, conn = await loop.create_unix_connection(lambda: Connection(protocol), path)
    return WebSocketWire(conn)


def short_socket_path(home: Path) -> str:
    """A socket path for ``home`` short enough for AF_UNIX (108 bytes)."""
    path = home / "s.sock"
    if len(str(path)) < 100:
        return str(path)
    return str(Path(os.environ.get("TMPDIR", "/tmp")) / f"appserver-{os.getpid()}-{id(home)}.sock")


@contextlib.asynccontextmanager
async def open_client(
    transport: str,
    home: Path,
    *,
    initialize: bool = True,
    capabilities: dict[str, Any] | None = None,
    overrides: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[WireClient]:
    """A connected client over ``transport`` against a server on ``home``."""
    extra: list[str] = []
    for o in overrides or []:
        extra += ["-c", o]
    client: WireClient
    server: WsServer | None = None
    saved_env: dict[str, str] | None = None
    if transport == "in_process":
        # The in-process server reads the environment at turn time (API keys): keep the
        # server's environment in place for the client's whole life.
        saved_env = dict(os.environ)
        os.environ.clear()
        os.environ.update(server_env(env))
        app = App(load_config(home, overrides or []))
        await app.start()
        handle = InProcessClientHandle.connect(app.processor, on_shutdown=app.stop)
        client = InProcessWire(handle, app)
    elif transport == "stdio":
        client = StdioWire(await spawn_stdio(home, *extra, env=env))
    elif transport == "websocket":
        server = await start_ws_server(home, *extra, env=env)
        client = await ws_connect(server.url)
    elif transport == "unix":
        sock = short_socket_path(home)
        server = await start_ws_server(home, *extra, env=env, listen=("--listen", f"unix://{sock}"))
        client = await unix_ws_connect(sock)
    else:
        raise ValueError(transport)
    try:
        if initialize:
            reply = await client.initialize(**(capabilities or {}))
            assert "result" in reply, reply
        yield client
    finally:
        await client.close()
        if server is not None:
            await server.stop()
        if saved_env is not None:
            os.environ.clear()
            os.environ.update(saved_env)


def is_request(msg: dict[str, Any]) -> bool:
    return "method" in msg and "id" in msg


__all__ = ["SOCKET_TRANSPORTS", "TIMEOUT", "TRANSPORTS", "Request", "WireClient", "open_client"]
