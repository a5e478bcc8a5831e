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
import appserver.server.cli
import appserver.transports.stdio
from appserver.server.app import App
from appserver.server.config import load_config

async def main() -> None:
    app = App(load_config(Path(sys.argv[1]), []))
    await app.start()
    await app.stop()

asyncio.run(main())
lazy = ("openai", "websockets", "yaml", "appserver.engine.providers.openai_client",
        "appserver.engine.providers.scripted", "appserver.transports.websocket")
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
import appserver.server.cli
import appserver.transports.stdio
from appserver.core.connection import ConnectionState, next_connection_id
from appserver.core.sinks import Policy, QueueSink
from appserver.protocol.envelope import Request
from appserver.server.app import App
from appserver.server.config import load_config

HEAVY = ("pydantic", "sqlite3", "appserver.engine.manager", "appserver.store.index",
         "appserver.protocol.thread_params")

class Spy(QueueSink):
    # Notes which heavy modules are loaded when the initialize reply is handed over.
    seen = None

    def _note(self, msg):
        if msg.payload.get("id") == 1 and Spy.seen is None:
            Spy.seen = ",".join(m for m in HEAVY if m in sys.modules)

    def offer(self, msg):
        self._note(msg)
        return super().offer(msg)

    def send_now(self, msg):
        self._note(msg)
        super().send_now(msg)

    async def send(self, msg):
        self._note(msg)
        await super().send(msg)

async def reply(app, conn, sink, request):
    assert app.processor.submit(conn, request)
    while True:
        for msg in await asyncio.wait_for(sink.next_batch(), 10):
            if msg.payload.get("id") == request.id:
                return msg.payload

async def main() -> None:
    app = App(load_config(Path(sys.argv[1]), []), lazy=True)
    await app.start()
    sink = Spy(Policy.AWAIT)
    conn = ConnectionState(next_connection_id(), "stdio", sink)
    app.processor.open_connection(conn)
    hello = {"clientInfo": {"name": "probe", "version": "1"}}
    first = await reply(app, conn, sink, Request(1, "initialize", hello))
    print("before:", Spy.seen)
    print("initialize:", "result" in first)
    listed = await reply(app, conn, sink, Request(2, "thread/list", {}))
    print("thread/list:", listed.get("result", {}).get("data"))
    await app.stop()

asyncio.run(main())
"""


def test_initialize_is_answered_before_pydantic_and_the_engine_load(tmp_path: Path) -> None:
    """The CLI's lazy App answers ``initialize`` with neither pydantic nor the engine
    imported (they are half of startup), then loads them for the next request."""
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
