"""A real streamable-HTTP MCP server for the tests (the SDK's MCPServer under uvicorn) on
127.0.0.1, kernel-chosen port: it prints the port once listening, and answers 401 to any
request whose ``Authorization`` is not ``Bearer <argv[1]>`` or that lacks ``X-Test: yes``.
Tool: ``whoami`` (echoes the ``X-Test`` header it saw).
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN = sys.argv[1] if len(sys.argv) > 1 else "secret-token"
server = MCPServer("remote-test")


@server.tool(description="Say which client called.")
def whoami(ctx: Context) -> str:
    headers = ctx.headers or {}
    return f"x-test={headers.get('x-test')}"


class BearerCheck:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            if headers.get("authorization") != f"Bearer {TOKEN}" or headers.get("x-test") != "yes":
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


async def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    app: Any = BearerCheck(server.streamable_http_app())
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    print(sock.getsockname()[1], flush=True)
    await uvicorn.Server(config).serve(sockets=[sock])


if __name__ == "__main__":
    anyio.run(main)
