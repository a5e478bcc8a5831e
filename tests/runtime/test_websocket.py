"""The WebSocket transport through the real CLI on a loopback socket.

Covers: per-connection handshakes and reply isolation; ``/healthz`` and ``/readyz``; the
Origin check (403, ``--allow-origin``); bearer-token auth (``--ws-token-file``,
``--ws-token-sha256``); refusing a non-loopback bind without auth; binary frames and
two-messages-in-one-frame dropped while the connection lives on; a reader that stops reading
does not stall another client and, once past the outbound hard mark, is closed with 1008;
SIGTERM drains (new requests refused, running work awaited) and exits 0, a second SIGTERM
stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import http.client
import signal
import sys
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from tests.harness import (
    TIMEOUT,
    WebSocketWire,
    WsServer,
    cli_argv,
    server_env,
    start_ws_server,
    ws_connect,
)

TOKEN = "s3cret-capability-token"
INVALID_REQUEST = -32600
SLOW_CLOSE_CODE = 1008
OVERLOADED = {
    "code": -32001,
    "message": "Server overloaded; retry later.",
    "data": {"codex_error_info": "server_overloaded"},  # what Codex's SDK retries on
}


@contextlib.asynccontextmanager
async def ws_server(home: Path, *extra: str, **kw: Any) -> AsyncIterator[WsServer]:
    server = await start_ws_server(home, *extra, **kw)
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def connected(url: str, token: str | None = None) -> AsyncIterator[WebSocketWire]:
    client = await ws_connect(url, token)
    try:
        yield client
    finally:
        await client.close()


def _http_get(base: str, path: str) -> tuple[int, bytes]:
    url = urllib.parse.urlsplit(base)
    assert url.hostname is not None and url.port is not None
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=TIMEOUT)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


async def http_get(base: str, path: str) -> tuple[int, bytes]:
    return await asyncio.wait_for(asyncio.to_thread(_http_get, base, path), TIMEOUT)


async def refused_status(url: str, **kw: Any) -> int:
    """Open a connection that must be refused at the upgrade; the HTTP status it got."""
    with pytest.raises(InvalidStatus) as info:
        await asyncio.wait_for(websockets.connect(url, **kw), TIMEOUT)
    return info.value.response.status_code


def _frame(msg: dict[str, Any]) -> str:
    return orjson.dumps(msg).decode()


async def test_each_connection_has_its_own_handshake_and_replies(home: Path) -> None:
    async with ws_server(home) as server, connected(server.url) as a, connected(server.url) as b:
        assert "result" in await a.initialize()
        # b has not initialized: a's handshake is not shared
        refused = await b.request("account/read", {}, request_id=1)
        assert refused["error"] == {"code": INVALID_REQUEST, "message": "Not initialized"}
        assert "result" in await b.initialize()
        await a.send({"id": 77, "method": "account/read", "params": {}})
        await b.send({"id": 77, "method": "model/list", "params": {}})
        assert "requiresOpenaiAuth" in (await a.reply_to(77))["result"]
        assert "data" in (await b.reply_to(77))["result"]
        # A last round trip each: anything misrouted would have arrived by now.
        await a.request("account/read", {}, request_id="end")
        await b.request("account/read", {}, request_id="end")
    a_ids = [m["id"] for m in a.seen if "id" in m and "method" not in m]
    b_ids = [m["id"] for m in b.seen if "id" in m and "method" not in m]
    assert a_ids == [1, 77, "end"]
    assert b_ids == [1, 1, 77, "end"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_health_endpoints_return_200(home: Path, path: str) -> None:
    async with ws_server(home) as server:
        status, _ = await http_get(server.http_base, path)
    assert status == 200


async def test_origin_header_is_refused(home: Path) -> None:
    async with ws_server(home) as server:
        assert await refused_status(server.url, origin="http://evil.example") == 403


async def test_allowed_origin_connects(home: Path) -> None:
    async with ws_server(home, "--allow-origin", "http://good.example") as server:
        assert await refused_status(server.url, origin="http://evil.example") == 403
        ws = await asyncio.wait_for(
            websockets.connect(server.url, origin="http://good.example"), TIMEOUT
        )
        client = WebSocketWire(ws)
        try:
            assert "result" in await client.initialize()
        finally:
            await client.close()


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


async def test_token_missing_is_401(home: Path, token_file: Path) -> None:
    async with ws_server(home, "--ws-token-file", str(token_file)) as server:
        assert await refused_status(server.url) == 401


async def test_token_wrong_is_401(home: Path, token_file: Path) -> None:
    async with ws_server(home, "--ws-token-file", str(token_file)) as server:
        headers = {"Authorization": "Bearer not-the-token"}
        assert await refused_status(server.url, additional_headers=headers) == 401


async def test_token_right_connects(home: Path, token_file: Path) -> None:
    async with (
        ws_server(home, "--ws-token-file", str(token_file)) as server,
        connected(server.url, TOKEN) as client,
    ):
        assert "result" in await client.initialize()


async def test_token_sha256_digest(home: Path) -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    async with ws_server(home, "--ws-token-sha256", digest) as server:
        headers = {"Authorization": "Bearer not-the-token"}
        assert await refused_status(server.url, additional_headers=headers) == 401
        async with connected(server.url, TOKEN) as client:
            assert "result" in await client.initialize()


async def test_non_loopback_bind_without_auth_refuses_to_start(home: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        *cli_argv("serve", "--ws", "0.0.0.0:0", "--home", str(home)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=server_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2
    assert out == b""
    text = err.decode()
    assert "refusing to start a non-loopback WebSocket listener" in text
    assert "Traceback" not in text


async def test_binary_frame_is_dropped_and_connection_lives(home: Path) -> None:
    async with ws_server(home) as server, connected(server.url) as client:
        assert "result" in await client.initialize()
        await client.ws.send(_frame({"id": 5, "method": "account/read", "params": {}}).encode())
        assert "result" in await client.request("account/read", {}, request_id=6)
    assert not [m for m in client.seen if m.get("id") == 5]


async def test_two_messages_in_one_frame_get_no_reply(home: Path) -> None:
    async with ws_server(home) as server, connected(server.url) as client:
        assert "result" in await client.initialize()
        two = (
            _frame({"id": 5, "method": "account/read", "params": {}})
            + "\n"
            + _frame({"id": 6, "method": "account/read", "params": {}})
        )
        await client.ws.send(two)
        assert "result" in await client.request("account/read", {}, request_id=7)
    assert not [m for m in client.seen if m.get("id") in (5, 6)]


async def _flood(ws: Any, count: int) -> None:
    for i in range(count):
        await ws.send(_frame({"id": i, "method": "model/list", "params": {}}))


async def _burst(client: WebSocketWire, count: int) -> None:
    for i in range(count):
        await client.send({"id": i, "method": "account/read", "params": {}})


async def _results(client: WebSocketWire, wanted: int) -> int:
    """Make ``wanted`` successful requests, retrying each one the server asked to retry;
    every single reply is awaited with a bound. Returns how many retries were needed."""
    retries = 0
    done = 0
    while done < wanted:
        reply = await client.request("account/read", {})
        if "result" in reply:
            done += 1
        else:
            assert reply["error"] == OVERLOADED, reply
            retries += 1
            assert retries < 100_000
    return retries


async def _slow_client(server: WsServer) -> ClientConnection:
    """An initialized connection that reads nothing: with ``max_queue=1`` its client stops
    reading the socket at once, so the server's writes to it back up through TCP."""
    slow = await asyncio.wait_for(
        websockets.connect(server.url, max_queue=1, compression=None), TIMEOUT
    )
    init = {"clientInfo": {"name": "slow", "version": "1"}}
    await slow.send(_frame({"id": "init", "method": "initialize", "params": init}))
    return slow


async def _read_all(ws: ClientConnection, ids: set[Any]) -> Counter[Any]:
    """Resume reading: count replies by id until every id in ``ids`` is answered or the server
    closes the connection."""
    ws.transport.resume_reading()
    counts: Counter[Any] = Counter()
    with contextlib.suppress(websockets.ConnectionClosed):
        while not ids <= counts.keys():
            msg = orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
            if "method" not in msg:
                counts[msg["id"]] += 1
    return counts


async def test_slow_reader_does_not_stall_another_client(home: Path) -> None:
    flood_count = 20_000  # ~7 MB of replies: more than the socket buffers hold
    async with ws_server(home) as server:
        slow = await _slow_client(server)
        try:
            async with connected(server.url) as fast:
                assert "result" in await fast.initialize()
                flood = asyncio.create_task(_flood(slow, flood_count))
                # B gets its work done while A floods, and after A's flood has backed up.
                await asyncio.wait_for(_results(fast, 200), 60)
                await asyncio.wait_for(flood, 60)
                await asyncio.wait_for(_results(fast, 200), 60)
                assert "data" in await fast.call("model/list", {})
            # A was never cut off (or, had it fallen past the hard mark, closed with 1008).
            ids = {"init", *range(flood_count)}
            counts = await _read_all(slow, ids)
            if slow.close_code is None:
                assert counts.keys() == ids and set(counts.values()) == {1}
            else:
                assert slow.close_code == SLOW_CLOSE_CODE
        finally:
            slow.transport.abort()


async def test_one_clients_flood_never_gets_another_refused(home: Path) -> None:
    """The ingress queue is per connection: with room for 4 messages each, a client that
    writes 2000 requests at once is partly refused, its neighbour never is."""
    flood_count = 2000
    async with (
        ws_server(home, "--ingress-capacity", "4") as server,
        connected(server.url) as noisy,
        connected(server.url) as quiet,
    ):
        assert "result" in await noisy.initialize()
        assert "result" in await quiet.initialize()
        flood = asyncio.create_task(_burst(noisy, flood_count))
        assert await asyncio.wait_for(_results(quiet, 200), 60) == 0  # no retry needed
        await asyncio.wait_for(flood, 60)
        replies = [
            await noisy.wait_for(lambda m, i=i: m.get("id") == i, TIMEOUT)
            for i in range(flood_count)
        ]
        refused = [r for r in replies if "error" in r]
        assert all(r["error"] == OVERLOADED for r in refused)
        assert 0 < len(refused) < flood_count


async def test_reader_past_the_hard_mark_is_closed_with_1008(home: Path) -> None:
    flood_count = 100_000  # more replies than the 65536-message outbound queue holds
    async with ws_server(home) as server:
        slow = await _slow_client(server)
        try:
            await asyncio.wait_for(_flood(slow, flood_count), 120)
            await server.wait_stderr("closing slow connection", 120)
            async with connected(server.url) as fast:  # everyone else is still served
                assert "result" in await fast.initialize()
                await asyncio.wait_for(_results(fast, 10), TIMEOUT)
            counts = await _read_all(slow, {"init", *range(flood_count)})
            assert slow.close_code == SLOW_CLOSE_CODE
            assert slow.close_reason is not None and "too slow" in slow.close_reason
            assert len(counts) < flood_count
        finally:
            slow.transport.abort()


async def test_sigterm_when_idle_exits_zero(home: Path) -> None:
    async with ws_server(home) as server, connected(server.url) as client:
        assert "result" in await client.initialize()
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.proc.wait(), 5) == 0


# The real CLI, with one more method whose handler never finishes: running work to drain.
HANGING_CLI = """
import asyncio, sys
import appserver.server.app as app_module
from appserver.protocol.registry import Scope
from appserver.protocol.runtime_params import GetAccountParams

class HangingApp(app_module.App):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

        async def hang(ctx, params):
            await asyncio.Event().wait()

        self.registry.register("test/hang", GetAccountParams, hang, scope=Scope.CONCURRENT)

app_module.App = HangingApp
from appserver.cli import main
sys.argv[0] = "appserver"
main()
"""


async def _start_draining(server: WsServer, client: WebSocketWire) -> None:
    """Start work that never ends, SIGTERM, and return once requests are refused as draining."""
    assert "result" in await client.initialize()
    await client.send({"id": "hang", "method": "test/hang", "params": {}})
    # Requests are dispatched in order: once this is answered, the hang is running.
    assert "result" in await client.request("account/read", {})
    server.proc.send_signal(signal.SIGTERM)
    for _ in range(1000):
        reply = await client.request("account/read", {})
        if "error" in reply:
            assert reply["error"]["code"] == INVALID_REQUEST
            assert reply["error"]["data"] == {"reason": "serverShuttingDown"}
            return
    raise AssertionError("the server never started draining")


async def test_sigterm_drain_refuses_new_requests_and_waits_for_work(home: Path) -> None:
    launcher = [sys.executable, "-c", HANGING_CLI]
    async with (
        ws_server(home, launcher=launcher) as server,
        connected(server.url) as client,
    ):
        await _start_draining(server, client)
        # Still serving: the drain waits for the hanging request.
        assert server.proc.returncode is None
        assert "error" in await client.request("account/read", {})


async def test_second_sigterm_during_drain_stops_at_once(home: Path) -> None:
    launcher = [sys.executable, "-c", HANGING_CLI]
    async with (
        ws_server(home, launcher=launcher) as server,
        connected(server.url) as client,
    ):
        await _start_draining(server, client)
        server.proc.send_signal(signal.SIGTERM)
        # Work was cut short: the documented code for a second signal N is 128 + N.
        assert await asyncio.wait_for(server.proc.wait(), 5) == 128 + signal.SIGTERM
