"""MCP fixtures: the mock model, a home whose config.toml uses it and names the test MCP
servers (real SDK servers in ``tests/mcp/servers``), and the model replies that call them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import ENV, write_config
from tests.support import mock_model as mm
from tests.support.mock_model import MockModelServer

SERVERS = Path(__file__).parent / "servers"
STDIO_SERVER = SERVERS / "stdio_tools.py"
HTTP_SERVER = SERVERS / "http_tools.py"

__all__ = [
    "ENV",
    "STDIO_SERVER",
    "check_elicitation",
    "mcp_call",
    "stdio_entry",
    "write_mcp_config",
]


@pytest.fixture
def model() -> Iterator[MockModelServer]:
    with MockModelServer() as server:
        yield server


def stdio_entry(name: str = "local", **extra: Any) -> str:
    """A ``[mcp_servers.NAME]`` table running the stdio test server."""
    lines = [
        f"[mcp_servers.{name}]",
        f"command = {json.dumps(sys.executable)}",
        f"args = [{json.dumps(str(STDIO_SERVER))}]",
    ]
    env = extra.pop("env", None)
    # Generous: a loaded test machine can take many seconds to start a Python MCP server.
    extra.setdefault("startup_timeout_sec", 90)
    for key, value in extra.items():
        lines.append(f"{key} = {json.dumps(value)}")
    if env:
        lines.append(f"[mcp_servers.{name}.env]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in env.items()]
    return "\n".join(lines) + "\n"


def write_mcp_config(home: Path, base_url: str, *entries: str, approval: str = "never") -> None:
    write_config(home, base_url, approval=approval)
    with (home / "config.toml").open("a", encoding="utf-8") as f:
        for entry in entries:
            f.write("\n" + entry)


def mcp_call(
    call_id: str, server: str, tool: str, arguments: dict[str, Any], *, response_id: str = "r1"
) -> mm.Reply:
    """A model reply calling an MCP tool the way the reference's model does: a
    ``function_call`` with ``namespace: mcp__<server>``."""
    item = {
        "type": "function_call",
        "call_id": call_id,
        "namespace": f"mcp__{server}",
        "name": tool,
        "arguments": json.dumps(arguments),
    }
    return mm.sse_response(
        [{"type": "response.output_item.done", "item": item}], response_id=response_id
    )


@pytest.fixture
def http_server() -> Iterator[str]:
    """The streamable-HTTP test server's URL (token ``secret-token``)."""
    import subprocess

    proc = subprocess.Popen(
        [sys.executable, str(HTTP_SERVER), "secret-token"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = (
            proc.stdout.readline().strip()
        )  # printed once listening (bounded by the test timeout)
        assert port.isdigit(), port
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        proc.kill()
        proc.wait(10)


REFERENCE_SCHEMA = Path("/work/shared/reference/schema/ServerRequest.json")


def check_elicitation(params: dict[str, Any]) -> None:
    """``mcpServer/elicitation/request`` params against the official schema's
    ``McpServerElicitationRequestParams`` (the wire recorder has no model for it); skipped
    when the reference schema is not on this machine."""
    if not REFERENCE_SCHEMA.exists():
        return
    import jsonschema

    schema = json.loads(REFERENCE_SCHEMA.read_text(encoding="utf-8"))
    target = {"$ref": "#/definitions/McpServerElicitationRequestParams"}
    jsonschema.validate(params, {**target, "definitions": schema["definitions"]})
