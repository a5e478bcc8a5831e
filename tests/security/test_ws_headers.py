"""Duplicated credential headers at the WebSocket upgrade are a clean 400.

Covers: a handcrafted HTTP upgrade over a raw socket carrying two ``Authorization`` headers
(with a token configured: even when one of them is right) or two ``Origin`` headers gets
``400 Bad Request`` naming the duplicated header, the server logs one warning line and no
traceback, and keeps serving (a well-formed upgrade still works); a duplicated ``Connection``
header on ``/healthz`` is not a crash either.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import TIMEOUT, WsServer, start_ws_server, ws_connect

TOKEN = "duplicate-header-test-token"


@contextlib.asynccontextmanager
async def _server(home: Path) -> AsyncIterator[WsServer]:
    token_file = home.parent / "token"
    token_file.write_text(TOKEN)
    server = await start_ws_server(home, "--ws-token-file", str(token_file))
    try:
        yield server
    finally:
        await server.stop()


async def _raw_request(server: WsServer, path: str, headers: list[tuple[str, str]]) -> bytes:
    host, port = server.url.removeprefix("ws://").split(":")
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), TIMEOUT)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(4096), TIMEOUT)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        (
            [("Authorization", f"Bearer {TOKEN}"), ("Authorization", "Bearer other")],
            b"duplicate Authorization header",
        ),
        (
            [("Authorization", f"Bearer {TOKEN}"), ("Origin", "http://a"), ("Origin", "http://b")],
            b"duplicate Origin header",
        ),
    ],
)
async def test_duplicate_headers_are_a_clean_400(
    home: Path, headers: list[tuple[str, str]], reason: bytes
) -> None:
    async with _server(home) as server:
        response = await _raw_request(server, "/", headers)
        assert response.startswith(b"HTTP/1.1 400 "), response
        assert reason in response
        healthz = await _raw_request(
            server, "/healthz", [("Connection", "keep-alive"), ("Connection", "close")]
        )
        assert healthz.startswith(b"HTTP/1.1 "), healthz
        client = await ws_connect(server.url, token=TOKEN)  # still serving
        try:
            assert "result" in await client.initialize()
        finally:
            await client.close()
        await server.wait_stderr("rejecting websocket request: " + reason.decode())
    log = "".join(server.stderr_lines)
    assert "Traceback" not in log and "ERROR" not in log, log
