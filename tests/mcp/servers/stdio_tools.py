"""A real MCP server for the tests (the SDK's MCPServer, formerly FastMCP), over stdio.

Tools: ``echo`` (text and structured output), ``add`` (structured), ``slow`` (reports progress,
then waits ``seconds``), ``crash`` (the process exits mid-call), ``ask`` (elicits a name from
the client), ``peek`` (read-only annotation); a resource ``test://greeting``. Environment:
``MCP_TEST_DELAY_S`` delays serving (a slow-starting server), ``MCP_TEST_GARBAGE`` writes a
line that is not JSON-RPC on stdout before serving, ``MCP_TEST_MARK`` is a file each call of
``slow`` creates when it finishes (so a test can tell a cancelled call never completed).
"""

from __future__ import annotations

import os
import sys
import time

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer("local-test")


class Sum(BaseModel):
    sum: int


@server.tool(description="Echo the text back.")
def echo(text: str) -> dict[str, str]:
    return {"echo": text, "env": os.environ.get("MCP_TEST_SECRET", "")}


@server.tool(description="Add two integers.")
def add(a: int, b: int) -> Sum:
    return Sum(sum=a + b)


@server.tool(description="Report progress, then wait.")
async def slow(seconds: float, ctx: Context) -> str:
    await ctx.report_progress(0.5, 1.0, "half way")
    await anyio.sleep(seconds)
    mark = os.environ.get("MCP_TEST_MARK")
    if mark:
        with open(mark, "w", encoding="utf-8") as f:
            f.write("finished")
    return "slept"


@server.tool(description="Exit the server process in the middle of the call.")
def crash() -> str:
    os._exit(3)


class Name(BaseModel):
    name: str


@server.tool(description="Ask the user for a name.")
async def ask(ctx: Context) -> str:
    answer = await ctx.elicit("What is your name?", Name)
    if answer.action == "accept":
        return f"hello {answer.data.name}"
    return f"no name ({answer.action})"


@server.tool(description="Read-only look.", annotations=ToolAnnotations(readOnlyHint=True))
def peek() -> str:
    return "peeked"


@server.resource("test://greeting", mime_type="text/plain")
def greeting() -> str:
    return "hello from a resource"


if __name__ == "__main__":
    delay = float(os.environ.get("MCP_TEST_DELAY_S", "0") or 0)
    if delay:
        time.sleep(delay)
    if os.environ.get("MCP_TEST_GARBAGE"):
        sys.stdout.write("this is not json-rpc\n")
        sys.stdout.flush()
    server.run("stdio")
