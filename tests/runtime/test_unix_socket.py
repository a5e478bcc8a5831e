"""``appserver serve --listen unix://PATH``: WebSocket over a Unix socket, as the Codex TUI's
``--remote unix://PATH`` speaks it (an HTTP upgrade, ``GET /rpc``) or as raw frames; the socket
file's mode, the stale and live leftovers, removal on exit, and bare ``unix://``."""

from __future__ import annotations

import asyncio
import signal
import socket
import stat
from pathlib import Path

import pytest

from appserver.server.serve import unix_socket_path
from appserver.transports.unix_socket import default_socket_path
from tests.harness import (
    TIMEOUT,
    cli_argv,
    server_env,
    short_socket_path,
    start_ws_server,
    unix_ws_connect,
)


@pytest.mark.parametrize("raw", [False, True], ids=["upgrade", "raw-frames"])
async def test_both_framings_are_served(home: Path, raw: bool) -> None:
    sock = short_socket_path(home)
    server = await start_ws_server(home, listen=("--listen", f"unix://{sock}"))
    try:
        assert server.url == f"unix://{sock}"
        client = await unix_ws_connect(sock, raw=raw)
        reply = await client.initialize()
        assert reply["result"]["userAgent"]
        assert (await client.call("thread/list", {}))["data"] == []
        await client.close()
    finally:
        await server.stop()


async def test_socket_is_private_and_removed_on_exit(home: Path) -> None:
    sock = Path(short_socket_path(home))
    server = await start_ws_server(home, listen=("--listen", f"unix://{sock}"))
    try:
        mode = sock.stat().st_mode
        assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o600
        server.proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(server.proc.wait(), TIMEOUT) == 0
        assert not sock.exists()
    finally:
        await server.stop()


async def _serve_once(home: Path, listen: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        *cli_argv("serve", "--listen", listen, "--home", str(home)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=server_env(),
    )
    _, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    return int(proc.returncode or 0), err.decode()


async def test_live_socket_is_refused_and_stale_one_replaced(home: Path) -> None:
    sock = Path(short_socket_path(home))
    # A stale file: bound once, its server gone without removing it.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()
    server = await start_ws_server(home, listen=("--listen", f"unix://{sock}"))
    try:
        code, err = await _serve_once(home, f"unix://{sock}")
        assert code == 2
        assert f"app-server control socket is already in use at {sock}" in err
        assert "Traceback" not in err
        client = await unix_ws_connect(str(sock))  # the first server is untouched
        assert "result" in await client.initialize()
        await client.close()
    finally:
        await server.stop()


async def test_a_path_that_is_not_a_socket_is_refused(home: Path) -> None:
    target = Path(short_socket_path(home))
    target.write_text("precious")
    code, err = await _serve_once(home, f"unix://{target}")
    assert code == 2 and "exists and is not a socket" in err
    assert target.read_text() == "precious"


def test_bare_unix_url_uses_the_default_path(home: Path, tmp_path: Path) -> None:
    assert unix_socket_path("unix://", home) == home / "app-server-control/app-server-control.sock"
    assert default_socket_path(home) == unix_socket_path("unix://", home)
    assert unix_socket_path(f"unix://{tmp_path}/x.sock", home) == tmp_path / "x.sock"


async def test_bare_unix_url_serves_there(tmp_path: Path) -> None:
    home = tmp_path / "h"  # short: the default socket path lives under the home
    home.mkdir()
    server = await start_ws_server(home, listen=("--listen", "unix://"))
    try:
        sock = default_socket_path(home)
        assert server.url == f"unix://{sock}"
        assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
        client = await unix_ws_connect(str(sock))
        assert "result" in await client.initialize()
        await client.close()
    finally:
        await server.stop()


async def test_garbage_and_plain_http_do_not_hurt_the_listener(home: Path) -> None:
    sock = short_socket_path(home)
    server = await start_ws_server(home, listen=("--listen", f"unix://{sock}"))
    try:
        # Not a request line and not a valid frame: that connection is closed, nothing else.
        reader, writer = await asyncio.open_unix_connection(sock)
        writer.write(b"\x00\x01garbage that is no frame\r\n\r\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), TIMEOUT) is not None
        writer.close()
        # A plain HTTP request gets the same health answer as over TCP.
        reader, writer = await asyncio.open_unix_connection(sock)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), TIMEOUT)
        assert status.startswith(b"HTTP/1.1 200")
        writer.close()
        client = await unix_ws_connect(sock)
        assert "result" in await client.initialize()
        await client.close()
    finally:
        await server.stop()
