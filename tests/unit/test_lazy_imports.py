"""Startup imports only what serving needs.

Covers: building the server the way ``serve --stdio`` does (CLI module, ``App`` over a fresh
home, the stdio transport) loads neither ``openai``, ``websockets``, ``yaml`` nor a model
client module; those load when a turn (or a WebSocket listener) first needs them.
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
