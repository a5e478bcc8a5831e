"""Driver for the second client, ``codex-app-server-sdk`` 0.4.1, over WebSocket or stdio.

Run by ``test_codex_app_server_sdk.py`` with the Python ≥ 3.12 interpreter of the venv that
``tests/sdk/conftest.py`` builds (the SDK needs 3.12; it is AGPL-3.0 and used here only as a
test-time client, nothing copied from it). Not a test module: it imports nothing from this
project, so it runs in that venv alone.

Usage: ``python sdk_driver.py TARGET TOKEN_FILE WIRE_LOG``. TARGET is a ``ws://`` URL
(``CodexClient.connect_websocket(url=..., token=...)``) or ``stdio:`` followed by the server's
argv as a JSON list (``CodexClient.connect_stdio(command=...)``; TOKEN_FILE is then unused). It
runs ``chat_once("Say hello.")``, then
two turns on the same thread whose commands need approval, answered by the SDK's approval
callback (accept, then decline). Prints one JSON object per step on stdout; appends every
message it sends and receives to ``WIRE_LOG`` as JSONL ``{"dir": "in"|"out", "msg": ...}`` so
the test can hand our server's messages to the wire recorder.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from codex_app_server_sdk import CodexClient
from codex_app_server_sdk.transport import StdioTransport, WebSocketTransport


def emit(step: str, **fields: Any) -> None:
    print(json.dumps({"step": step, **fields}), flush=True)


def log_wire(path: Path) -> None:
    """Tee the transport's messages into ``path`` (class-level: the client builds its own)."""
    log = path.open("a", encoding="utf-8")
    for transport in (WebSocketTransport, StdioTransport):
        recv, send = transport.recv, transport.send

        async def logged_recv(self: Any, recv: Any = recv) -> dict[str, Any]:
            msg: dict[str, Any] = await recv(self)
            log.write(json.dumps({"dir": "in", "msg": msg}) + "\n")
            log.flush()
            return msg

        async def logged_send(self: Any, payload: Any, send: Any = send) -> None:
            log.write(json.dumps({"dir": "out", "msg": dict(payload)}) + "\n")
            log.flush()
            await send(self, payload)

        transport.recv = logged_recv  # type: ignore[method-assign]
        transport.send = logged_send  # type: ignore[method-assign]


def command_statuses(events: list[dict[str, Any]]) -> list[str]:
    return [
        e["params"]["item"]["status"]
        for e in events
        if e.get("method") == "item/completed"
        and e["params"]["item"].get("type") == "commandExecution"
    ]


def connect(target: str, token_file: str) -> CodexClient:
    if target.startswith("stdio:"):
        # The SDK's env replaces the child's environment rather than adding to it.
        return CodexClient.connect_stdio(
            command=json.loads(target.removeprefix("stdio:")),
            env=dict(os.environ),
            request_timeout=30.0,
            inactivity_timeout=30.0,
        )
    token = Path(token_file).read_text(encoding="utf-8").strip()
    return CodexClient.connect_websocket(
        url=target, token=token, request_timeout=30.0, inactivity_timeout=30.0
    )


async def main(target: str, token_file: str, wire_log: str) -> None:
    log_wire(Path(wire_log))
    client = connect(target, token_file)
    async with client:
        init = await client.initialize()
        emit("initialize", result=init.model_dump(mode="json"))

        hello = await client.chat_once("Say hello.")
        emit("hello", final_text=hello.final_text, thread_id=hello.thread_id)

        decisions = iter(["accept", "decline"])
        asked: list[dict[str, Any]] = []

        async def on_approval(request: Any) -> Any:
            asked.append(
                {
                    "kind": type(request).__name__,
                    "thread_id": request.thread_id,
                    "item_id": request.item_id,
                    "command": getattr(request, "command", None),
                }
            )
            return next(decisions)

        client.set_approval_handler(on_approval)
        for prompt in ("RUN_SHELL_A", "RUN_SHELL_B"):
            result = await client.chat_once(prompt, thread_id=hello.thread_id)
            emit(
                prompt,
                final_text=result.final_text,
                asked=asked[-1] if asked else None,
                commands=command_statuses(result.raw_events),
            )


if __name__ == "__main__":
    asyncio.run(asyncio.wait_for(main(*sys.argv[1:4]), 120))
