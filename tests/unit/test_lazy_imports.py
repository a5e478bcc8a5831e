"""Startup imports only what serving needs.

Covers: building the server the way ``serve --stdio`` does (CLI module, ``App`` over a fresh
home, the stdio transport) loads neither ``openai``, ``websockets``, ``yaml`` nor a model
client module; those load when a turn (or a WebSocket listener) first needs them; and the
CLI's lazy ``App`` answers ``initialize`` before pydantic, SQLite or the engine are imported.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import asyncio, sys
from pathlib import Path
import appserver.cli
import appserver.transports.stdio
from appserver.server.app import App
from appserver.server.config import load_config

async def main() -> None:
    app = App(load_config(Path(sys.argv[1]), []))
    await app.start()
    await app.stop()

asyncio.run(main())
lazy = ("openai", "websockets", "yaml", "appserver.engine.providers.openai_http",
        "appserver.engine.providers.responses_client", "appserver.engine.providers.chat_client",
        "appserver.engine.providers.script", "appserver.engine.providers.scripted",
        "appserver.transports.websocket")
print(",".join(m for m in lazy if m in sys.modules))
"""


def test_serving_stdio_does_not_import_model_clients_or_websockets(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "", f"imported at startup: {done.stdout.strip()}"


HANDSHAKE_PROBE = """
import asyncio, sys
from pathlib import Path
import appserver.cli
import appserver.transports.stdio
from appserver.core.connection import ConnectionState, next_connection_id
from appserver.core.sinks import Policy, QueueSink
from appserver.protocol.envelope import Request
from appserver.server.app import App
from appserver.server.config import load_config

HEAVY = ("pydantic", "sqlite3", "appserver.engine.manager", "appserver.store.index",
         "appserver.protocol.thread_params")

async def writer(sink, replies, done):
    # Stands in for a transport's writer task: what it takes from the sink goes on the wire.
    while True:
        for msg in await sink.next_batch():
            if msg.payload.get("id") == 1:
                replies["before"] = ",".join(m for m in HEAVY if m in sys.modules)
            replies[msg.payload.get("id")] = msg.payload
            if msg.payload.get("id") == 2:
                done.set()

async def main() -> None:
    app = App(load_config(Path(sys.argv[1]), []), lazy=True)
    await app.start()
    sink = QueueSink(Policy.AWAIT)
    conn = ConnectionState(next_connection_id(), "stdio", sink)
    app.processor.open_connection(conn)
    replies, done = {}, asyncio.Event()
    task = asyncio.create_task(writer(sink, replies, done))
    # A client that pipelines: its first request right behind initialize.
    hello = {"clientInfo": {"name": "probe", "version": "1"}}
    await app.processor.ingest(conn, Request(1, "initialize", hello))
    await app.processor.ingest(conn, Request(2, "thread/list", {}))
    await asyncio.wait_for(done.wait(), 10)
    print("before:", replies["before"])
    print("initialize:", "result" in replies[1])
    print("thread/list:", replies[2].get("result", {}).get("data"))
    task.cancel()
    await app.stop()

asyncio.run(main())
"""


def test_initialize_is_answered_before_pydantic_and_the_engine_load(tmp_path: Path) -> None:
    """The CLI's lazy App puts the ``initialize`` reply on the wire with neither pydantic nor
    the engine imported (they are half of startup), even when the client's next request is
    already queued behind it; then it loads them and answers that request."""
    done = subprocess.run(
        [sys.executable, "-c", HANDSHAKE_PROBE, str(tmp_path / "home")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines() == ["before: ", "initialize: True", "thread/list: []"], (
        done.stdout + done.stderr
    )
