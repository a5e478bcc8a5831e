"""A client for the host APIs over every transport: stdio, in-process, the Unix socket, and a
WebSocket connection that authenticated with a bearer token (the only kind the boundary lets
use the host APIs over WebSocket).

``host_client(transport, home, roots=..., unrestricted=...)`` starts the real server with
``[host_api]`` set from the arguments (``-c host_api.roots=[...]``) and yields an initialized
``WireClient``. ``unauthenticated_ws_client`` is the loopback WebSocket without a token.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.harness import SOCKET_TRANSPORTS, WireClient, open_client, start_ws_server, ws_connect

HOST_TRANSPORTS = SOCKET_TRANSPORTS  # in_process, stdio, websocket (authenticated), unix
TOKEN = "host-api-test-token-0123456789abcdef"


def host_overrides(roots: list[Path] | None, unrestricted: bool) -> list[str]:
    out = [f"host_api.unrestricted={'true' if unrestricted else 'false'}"]
    if roots is not None:
        out.append("host_api.roots=" + json.dumps([str(r) for r in roots]))
    return out


@contextlib.asynccontextmanager
async def authenticated_ws_client(
    home: Path,
    overrides: list[str],
    *,
    token: str | None = TOKEN,
    env: dict[str, str] | None = None,
) -> AsyncIterator[WireClient]:
    """The real CLI on a loopback WebSocket that requires ``TOKEN``; the client presents
    ``token`` (None: a server without a token, and a client without one)."""
    extra: list[str] = []
    for o in overrides:
        extra += ["-c", o]
    if token is not None:
        token_file = home / "ws-token"
        token_file.write_text(TOKEN)
        extra += ["--ws-token-file", str(token_file)]
    server = await start_ws_server(home, *extra, env=env)
    client = await ws_connect(server.url, token=token)
    try:
        reply = await client.initialize()
        assert "result" in reply, reply
        yield client
    finally:
        await client.close()
        await server.stop()


@contextlib.asynccontextmanager
async def host_client(
    transport: str,
    home: Path,
    *,
    roots: list[Path] | None = None,
    unrestricted: bool = False,
    capabilities: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
) -> AsyncIterator[WireClient]:
    overrides = host_overrides(roots, unrestricted)
    if transport == "websocket":
        async with authenticated_ws_client(home, overrides, env=env) as client:
            yield client
        return
    async with open_client(
        transport, home, overrides=overrides, capabilities=capabilities, env=env
    ) as client:
        yield client


def error_of(reply: dict[str, Any]) -> dict[str, Any]:
    assert "error" in reply, reply
    error: dict[str, Any] = reply["error"]
    assert "Traceback" not in error["message"]
    return error
