"""The stdio transport through the real CLI (or a small script around ``serve_stdio``).

Covers: a 2000-request burst written at once is answered in full (each id exactly once, a
result or -32001), also with a tiny ingress queue; stdin EOF exits 0; an oversized line is
discarded with a log line and the stream resyncs; a stray ``print`` in a handler never reaches
the protocol stream; CRLF endings, two requests in one write and one request split over two
writes.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from tests.harness import TIMEOUT, StdioWire, server_env, spawn_stdio
from tests.support.wire_recorder import RECORDER

OVERLOADED = {
    "code": -32001,
    "message": "Server overloaded; retry later.",
    "data": {"codex_error_info": "server_overloaded"},  # what Codex's SDK retries on
}
BURST = 2000


def _line(msg: dict[str, Any]) -> bytes:
    return orjson.dumps(msg) + b"\n"


def _replies(client: StdioWire) -> list[dict[str, Any]]:
    return [m for m in client.seen if "id" in m and "method" not in m]


async def _burst(home: Path, *extra: str) -> Counter[str]:
    """Write BURST account/read requests in one write; check each id is answered once."""
    client = StdioWire(await spawn_stdio(home, *extra))
    try:
        assert "result" in await client.initialize()
        ids = range(1000, 1000 + BURST)
        data = b"".join(_line({"id": i, "method": "account/read", "params": {}}) for i in ids)
        await client.send_raw(data)
        pending = set(ids)
        while pending:
            msg = await client.wait_for(
                lambda m: "method" not in m and m.get("id") in pending, TIMEOUT
            )
            pending.discard(msg["id"])
        # The sentinel is queued after the whole burst: once it is answered, nothing more of
        # the burst can follow, so duplicates would already be in ``seen``.
        assert "result" in await client.request("account/read", {}, request_id="sentinel")
        replies = [m for m in _replies(client) if isinstance(m["id"], int) and m["id"] >= 1000]
        counts = Counter(m["id"] for m in replies)
        assert sorted(counts) == list(ids)
        assert set(counts.values()) == {1}
        kinds: Counter[str] = Counter()
        for m in replies:
            if "result" in m:
                kinds["ok"] += 1
            else:
                assert m["error"] == OVERLOADED, m
                kinds["overloaded"] += 1
        return kinds
    finally:
        await client.close()


async def test_burst_is_answered_in_full(home: Path) -> None:
    kinds = await _burst(home)
    assert kinds["ok"] + kinds["overloaded"] == BURST
    assert kinds["ok"] > 0


async def test_burst_with_tiny_ingress_queue_is_answered_in_full(home: Path) -> None:
    kinds = await _burst(home, "--ingress-capacity", "4")
    assert kinds["ok"] + kinds["overloaded"] == BURST
    assert kinds["overloaded"] > 0  # 2000 lines in one write cannot fit a queue of 4


async def test_stdin_eof_exits_zero(home: Path) -> None:
    client = StdioWire(await spawn_stdio(home))
    try:
        assert "result" in await client.initialize()
        assert await client.wait_closed(timeout=5) == 0
    finally:
        await client.close()


async def test_oversized_line_is_discarded_and_stream_resyncs(home: Path) -> None:
    client = StdioWire(await spawn_stdio(home, "--max-line-bytes", "1000"))
    try:
        assert "result" in await client.initialize()
        huge = {"id": 5, "method": "account/read", "params": {"pad": "x" * (1024 * 1024)}}
        await client.send_raw(_line(huge))
        assert "result" in await client.request("account/read", {}, request_id=6)
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    assert [m["id"] for m in _replies(client)] == [1, 6]
    assert any("discarded an input line longer than 1000 bytes" in s for s in client.stderr_lines)


async def test_crlf_line_endings(home: Path) -> None:
    client = StdioWire(await spawn_stdio(home))
    try:
        assert "result" in await client.initialize()
        await client.send_raw(
            orjson.dumps({"id": 7, "method": "account/read", "params": {}}) + b"\r\n"
        )
        assert "result" in await client.reply_to(7)
    finally:
        await client.close()


async def test_two_requests_in_one_write(home: Path) -> None:
    client = StdioWire(await spawn_stdio(home))
    try:
        assert "result" in await client.initialize()
        await client.send_raw(
            _line({"id": 8, "method": "account/read", "params": {}})
            + _line({"id": 9, "method": "model/list", "params": {}})
        )
        assert "requiresOpenaiAuth" in (await client.reply_to(8))["result"]
        assert "data" in (await client.reply_to(9))["result"]
    finally:
        await client.close()


async def test_one_request_split_over_two_writes(home: Path) -> None:
    client = StdioWire(await spawn_stdio(home))
    try:
        assert "result" in await client.initialize()
        data = _line({"id": 10, "method": "account/read", "params": {}})
        stdin = client.proc.stdin
        assert stdin is not None
        for part in (data[:17], data[17:]):
            RECORDER.sent_raw(client, part, stream=True)  # written past the harness
            stdin.write(part)
            await stdin.drain()
        assert "result" in await client.reply_to(10)
    finally:
        await client.close()


# A server whose extra handler writes to stdout in every way a careless handler might.
PRINTING_SERVER = """
import asyncio, os, sys
from pathlib import Path
from appserver.protocol.registry import Scope
from appserver.protocol.runtime_params import GetAccountParams
from appserver.server.app import App
from appserver.server.config import load_config
from appserver.transports.stdio import serve_stdio

async def noisy(ctx, params):
    print("stray print from a handler")
    print("{not json")
    sys.stdout.flush()
    sys.__stdout__.write("write to sys.__stdout__\\n")
    sys.__stdout__.flush()
    os.write(1, b"raw write to fd 1\\n")
    return {"printed": True}

async def main():
    app = App(load_config(Path(sys.argv[1])))
    app.registry.register("test/print", GetAccountParams, noisy, scope=Scope.INLINE)
    await app.start()
    try:
        await serve_stdio(app.processor)
    finally:
        await app.stop()

asyncio.run(main())
"""


class RawStdioWire(StdioWire):
    """Keeps every stdout line as bytes, so a non-JSON line fails the test instead of the reader."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.raw_lines: list[bytes] = []
        super().__init__(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                return
            self.raw_lines.append(line)
            try:
                msg = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            self._received(msg)


async def test_stray_print_in_handler_does_not_corrupt_stdout(home: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        PRINTING_SERVER,
        str(home),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=server_env(),
    )
    client = RawStdioWire(proc)
    try:
        assert "result" in await client.initialize()
        assert await client.call("test/print", {}) == {"printed": True}
        assert "result" in await client.request("account/read", {})
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    assert client.raw_lines
    for line in client.raw_lines:
        orjson.loads(line)  # every stdout line is a protocol message
    stderr = "".join(client.stderr_lines)
    for text in ("stray print from a handler", "write to sys.__stdout__", "raw write to fd 1"):
        assert text in stderr
