"""A stdio MCP server that sleeps ``$MCP_BENCH_DELAY_S`` (8 by default) before serving, for
``bench/mcp_startup.py``. One tool, ``ping``. Run by the benchmark, never by the tests."""

from __future__ import annotations

import os
import time

from mcp.server.mcpserver import MCPServer

server = MCPServer("slow-bench")


@server.tool(description="Answer pong.")
def ping() -> str:
    return "pong"


if __name__ == "__main__":
    time.sleep(float(os.environ.get("MCP_BENCH_DELAY_S", "8")))
    server.run("stdio")
