"""Oversized input is discarded without being buffered whole.

Covers: a 64 MiB stdio line against a 1 MiB ``--max-line-bytes`` is dropped with a log line,
the next request is answered, and the server's peak RSS (``VmHWM``) grows by far less than
the line; a 16 MiB WebSocket message against a 1 MiB ``--max-message-bytes`` closes that
connection with 1009 (message too big) while the server's peak RSS stays flat and another
client is served.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import websockets
from websockets.protocol import State

from tests.harness import TIMEOUT, StdioWire, spawn_stdio, start_ws_server, ws_connect

MiB = 1024 * 1024


def peak_rss(pid: int) -> int:
    """The process's high-water-mark resident set size, in bytes (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


async def test_oversized_stdio_line_is_not_buffered(home: Path) -> None:
    client = StdioWire(await spawn_stdio(home, "--max-line-bytes", str(MiB)))
    try:
        assert "result" in await client.initialize()
        assert "result" in await client.request("account/read", {})
        before = peak_rss(client.proc.pid)
        stdin = client.proc.stdin
        assert stdin is not None
        chunk = b'{"id": "huge", "method": "account/read", "params": {"pad": "' + b"x" * MiB
        stdin.write(chunk)
        for _ in range(63):
            stdin.write(b"x" * MiB)
            await asyncio.wait_for(stdin.drain(), TIMEOUT)
        stdin.write(b'"}}\n')
        assert "result" in await client.request("account/read", {}, request_id="after")
        growth = peak_rss(client.proc.pid) - before
        print(f"\n64 MiB stdio line: peak RSS grew {growth / MiB:.1f} MiB", file=sys.stderr)
        assert growth < 16 * MiB, f"peak RSS grew {growth / MiB:.1f} MiB for a 64 MiB line"
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    assert any("discarded an input line longer than" in line for line in client.stderr_lines)
    assert not [m for m in client.seen if m.get("id") == "huge"]


async def test_oversized_websocket_message_closes_only_that_connection(home: Path) -> None:
    server = await start_ws_server(home, "--max-message-bytes", str(MiB))
    try:
        big = await ws_connect(server.url)
        other = await ws_connect(server.url)
        try:
            assert "result" in await big.initialize()
            assert "result" in await other.initialize()
            before = peak_rss(server.proc.pid)
            payload = '{"id": 1, "method": "account/read", "params": {"pad": "' + "x" * (16 * MiB)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(big.ws.send(payload + '"}}'), TIMEOUT)
                await asyncio.wait_for(big.ws.recv(), TIMEOUT)
            await asyncio.wait_for(big.ws.wait_closed(), TIMEOUT)
            assert big.ws.close_code == 1009
            assert "result" in await other.request("account/read", {})
            growth = peak_rss(server.proc.pid) - before
            print(f"\n16 MiB ws message: peak RSS grew {growth / MiB:.1f} MiB", file=sys.stderr)
            assert growth < 8 * MiB, f"peak RSS grew {growth / MiB:.1f} MiB for a 16 MiB message"
        finally:
            for client in (big, other):
                if client.ws.state is not State.CLOSED:
                    await client.close()
    finally:
        await server.stop()
