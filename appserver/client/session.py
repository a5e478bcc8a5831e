"""The client's protocol session: request ids, replies, incoming traffic and the wire log.

Owns ``Session``: it numbers requests, resolves each reply to its caller (``RpcFailure`` for
an error reply), queues everything else the server sends (notifications and server requests)
for ``next_message``, reports every message in both directions to an optional wire-log
callback, and performs the ``initialize`` / ``initialized`` handshake. When the peer goes
away, pending and later calls raise ``ConnectionLost``. This module must never print or
decide how to answer a server request (``chat`` does).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from appserver.client.transport import Transport
from appserver.protocol.version import APPSERVER_VERSION

WireLog = Callable[[str, dict[str, Any]], None]  # ("c2s" | "s2c", message)


class ConnectionLost(Exception):
    """The server went away; the message says what is known about why."""


class RpcFailure(Exception):
    """The server answered a request with an error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class Session:
    def __init__(self, transport: Transport, *, wire_log: WireLog | None = None) -> None:
        self.transport = transport
        self.wire_log = wire_log
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[str, asyncio.Future[Any]]] = {}
        self._incoming: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._closed = False
        self._reader = asyncio.create_task(self._read())
        self.initialize_result: dict[str, Any] = {}

    # -- incoming ---------------------------------------------------------------------------
    async def _read(self) -> None:
        try:
            while (msg := await self.transport.receive()) is not None:
                if self.wire_log is not None:
                    self.wire_log("s2c", msg)
                if "method" not in msg and "id" in msg:
                    self._resolve(msg)
                else:
                    self._incoming.put_nowait(msg)
        finally:
            self._closed = True
            lost = self._lost()
            for _method, fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(lost)
            self._pending.clear()
            self._incoming.put_nowait(None)

    def _resolve(self, msg: dict[str, Any]) -> None:
        rid = msg.get("id")
        entry = self._pending.pop(rid, None) if isinstance(rid, int) else None
        if entry is None:
            return
        method, fut = entry
        if fut.done():
            return
        err = msg.get("error")
        if isinstance(err, dict):
            code = err.get("code")
            fut.set_exception(
                RpcFailure(
                    method,
                    code if isinstance(code, int) else 0,
                    str(err.get("message", "")),
                    err.get("data"),
                )
            )
        else:
            fut.set_result(msg.get("result"))

    def _lost(self) -> ConnectionLost:
        detail = self.transport.failure_detail()
        text = f"connection to {self.transport.description} closed"
        return ConnectionLost(f"{text} ({detail})" if detail else text)

    async def next_message(self) -> dict[str, Any]:
        """The next notification or server request; ``ConnectionLost`` once the peer is gone."""
        msg = await self._incoming.get()
        if msg is None:
            self._incoming.put_nowait(None)  # every later call sees the end too
            raise self._lost()
        return msg

    def queued_messages(self) -> list[dict[str, Any]]:
        """Notifications and server requests already received, without waiting."""
        out: list[dict[str, Any]] = []
        while not self._incoming.empty():
            msg = self._incoming.get_nowait()
            if msg is None:
                self._incoming.put_nowait(None)
                break
            out.append(msg)
        return out

    # -- outgoing ---------------------------------------------------------------------------
    async def _send(self, msg: dict[str, Any]) -> None:
        if self._closed:
            raise self._lost()
        if self.wire_log is not None:
            self.wire_log("c2s", msg)
        await self.transport.send(msg)

    async def request(self, method: str, params: Any = None) -> Any:
        rid = next(self._ids)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = (method, fut)
        msg: dict[str, Any] = {"id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        try:
            await self._send(msg)
        except ConnectionLost:
            self._pending.pop(rid, None)
            raise
        return await fut

    async def notify(self, method: str, params: Any = None) -> None:
        msg: dict[str, Any] = {"method": method}
        if params is not None:
            msg["params"] = params
        await self._send(msg)

    async def respond(self, request_id: Any, result: Any) -> None:
        await self._send({"id": request_id, "result": result})

    async def reject(self, request_id: Any, code: int, message: str) -> None:
        await self._send({"id": request_id, "error": {"code": code, "message": message}})

    async def initialize(self, client_name: str = "appserver-chat") -> dict[str, Any]:
        params = {
            "clientInfo": {
                "name": client_name,
                "title": "appserver chat",
                "version": APPSERVER_VERSION,
            },
            "capabilities": {"experimentalApi": False},
        }
        result = await self.request("initialize", params)
        self.initialize_result = result if isinstance(result, dict) else {}
        await self.notify("initialized")
        return self.initialize_result

    async def close(self) -> None:
        await self.transport.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
