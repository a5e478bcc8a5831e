"""The official SDK recognises our -32001 reply as retryable (the reference's bare -32001 is
not: known-failures.md #5), so its ``retry_on_overload`` helper works against this server."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from tests.harness import StdioWire, spawn_stdio

errors = pytest.importorskip("openai_codex.errors", reason="the official SDK is not installed")

BURST = 300


async def test_overload_replies_are_retryable_for_the_official_sdk(home: Path) -> None:
    client = StdioWire(await spawn_stdio(home, "--ingress-capacity", "2"))
    try:
        assert "result" in await client.initialize()
        lines = (
            orjson.dumps({"id": i, "method": "account/read", "params": {}}) + b"\n"
            for i in range(BURST)
        )
        await client.send_raw(b"".join(lines))
        replies = [await client.reply_to(i) for i in range(BURST)]
    finally:
        await client.close()
    refused = [r["error"] for r in replies if "error" in r]
    assert refused, "a queue of 2 under a burst of 300 refuses some requests"
    for err in refused:
        mapped = errors.map_jsonrpc_error(err["code"], err["message"], err.get("data"))
        assert isinstance(mapped, errors.ServerBusyError), err
        assert errors.is_retryable_error(mapped)
