"""The stock Codex TUI 0.169.0 and codex-acp 2.6.0 sessions, replayed against our server over
all three transports: every request either client sent the reference server gets the same
class of reply from ours (a result carrying the reference's result keys, or the same error
code), and every reply validates against the official schema (the wire recorder checks each
message the harness receives; ``tests/conftest.py`` fails the run on a mismatch).

The requests live in ``client_sessions.json``, the project's own copy of what the two clients
sent (one entry per connection, ``skills/*`` left out), so this needs neither the clients nor
the reference. The replay behaves as the clients do: connections of one client share one
server (the TUI's WebSocket connections; over stdio, each connection is a new process, as
codex-acp spawns one per session, so a request naming an ephemeral thread of an earlier
connection gets the error the reference gives for an unknown thread); ids and cursors the
reference's results announced are mapped to the ones ours gives at the same place; a
``thread/readState/update`` names the revision the client last saw; server requests
(approvals) get the answer the client gave; each turn is awaited to its end. The model is
the scripted provider, with rules keyed on the clients' prompts (the captures' mock answered
``RUN_SHELL <command>`` with that command).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from appserver.server.app import App
from appserver.server.config import load_config
from appserver.transports.in_process import InProcessClientHandle
from tests.harness import (
    InProcessWire,
    StdioWire,
    WireClient,
    is_request,
    spawn_stdio,
    start_ws_server,
    ws_connect,
)

SESSIONS = json.loads(Path(__file__).with_name("client_sessions.json").read_text("utf-8"))
CLIENTS = sorted(SESSIONS["clients"])
REFERENCE_CWD = "/home/user/project"

# Result keys the reference sends that our replies leave out, and why.
ABSENT_KEYS: dict[str, set[str]] = {
    # Experimental provenance and features this server has none of: remote environments
    # (runtimeWorkspaceRoots), plugins (disabledPluginIds), multi-agent mode, permission
    # profile provenance (the resolved `sandbox` policy is sent), the effective collaboration
    # mode (the history carries it; see engine/collaboration.py).
    "thread/start": {
        "activePermissionProfile",
        "disabledPluginIds",
        "multiAgentMode",
        "runtimeWorkspaceRoots",
    },
    "thread/resume": {
        "activePermissionProfile",
        "collaborationMode",
        "disabledPluginIds",
        "multiAgentMode",
        "runtimeWorkspaceRoots",
    },
    # The ChatGPT user and workspace routing (hosted services only).
    "account/read": {"userId", "workspaceRouting"},
}

SCRIPT = """
rules:
  - when_contains: "Generate a concise, single-line task title"
    text: "Replay title"
  - when_contains: "generate a very short title"
    text: '{"title": "Replay title"}'
  - when_contains: "RUN_SHELL rm -f victim.txt"
    shell: "rm -f victim.txt && touch approved-marker.txt"
  - when_contains: "RUN_SHELL ESCALATE touch acp-marker.txt"
    shell: "touch acp-marker.txt"
  - when_tool_output: true
    text: "Command finished."
default: "Hello from the mock model."
"""


def _write_config(home: Path) -> None:
    script = home / "replay-script.yaml"
    script.write_text(SCRIPT, encoding="utf-8")
    # The provider and model the clients name, as the captures' config had them.
    (home / "config.toml").write_text(
        f"""
model = "mock-model"
model_provider = "mock_provider"
approval_policy = "on-request"
sandbox_mode = "read-only"

[model_providers.mock_provider]
name = "Mock provider"
wire_api = "scripted"
script = "{script}"
""",
        encoding="utf-8",
    )


def _mapped(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_mapped(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _mapped(v, names) for k, v in value.items()}
    return value


def _at(result: Any, path: str) -> Any:
    for part in path.split("/"):
        result = result[part]
    return result


def _revision(client: WireClient, thread_id: str) -> str | None:
    """The read-state revision of ``thread_id`` this connection saw last."""
    for msg in reversed(client.seen):
        params = msg.get("params") if "method" in msg else msg.get("result")
        if not isinstance(params, dict) or not isinstance(params.get("readState"), dict):
            continue
        if msg.get("method") in (None, "thread/readState/changed") and (
            "method" not in msg or params.get("threadId") == thread_id
        ):
            return str(params["readState"]["revision"])
    return None


Connect = Callable[[], contextlib.AbstractAsyncContextManager[WireClient]]


@contextlib.asynccontextmanager
async def _server(transport: str, home: Path) -> AsyncIterator[Connect]:
    """One server for a client's whole session; ``connect()`` opens one more connection."""
    if transport == "in_process":
        app = App(load_config(home))
        await app.start()

        @contextlib.asynccontextmanager
        async def in_process() -> AsyncIterator[WireClient]:
            client = InProcessWire(InProcessClientHandle.connect(app.processor), app)
            try:
                yield client
            finally:
                await client.close()

        try:
            yield in_process
        finally:
            await app.stop()
    elif transport == "websocket":
        server = await start_ws_server(home)

        @contextlib.asynccontextmanager
        async def websocket() -> AsyncIterator[WireClient]:
            client = await ws_connect(server.url)
            try:
                yield client
            finally:
                await client.close()

        try:
            yield websocket
        finally:
            await server.stop()
    else:

        @contextlib.asynccontextmanager
        async def stdio() -> AsyncIterator[WireClient]:
            client = StdioWire(await spawn_stdio(home))
            try:
                yield client
            finally:
                await client.close()

        yield stdio


async def _answer_until(client: WireClient, done: Callable[[dict[str, Any]], bool]) -> None:
    """Answer server requests as the client did until a message satisfies ``done``."""
    while True:
        msg = await client.wait_for(lambda m: is_request(m) or done(m))
        if not is_request(msg):
            return
        answer = SESSIONS["answers"].get(msg["method"])
        assert answer is not None, f"no recorded answer for {msg['method']}"
        await client.send({"id": msg["id"], "result": answer})


@pytest.mark.parametrize("client_name", CLIENTS)
async def test_client_session_replay(
    transport: str, home: Path, tmp_path: Path, client_name: str
) -> None:
    _write_config(home)
    workdir = tmp_path / "project"
    workdir.mkdir()
    names = {REFERENCE_CWD: str(workdir)}
    checked = 0
    async with _server(transport, home) as connect:
        for connection in SESSIONS["clients"][client_name]:
            async with connect() as client:
                for step in connection["steps"]:
                    msg = _mapped(step["send"], names)
                    params = msg.get("params")
                    if msg["method"] == "thread/readState/update":
                        params["expectedRevision"] = _revision(client, params["threadId"])
                    await client.send(msg)
                    if "id" not in msg:
                        continue
                    reply = await client.reply_to(msg["id"])
                    want = step["reply"]
                    where = (client_name, msg["method"], msg["id"])
                    if step.get("ephemeralFromEarlierConnection") and transport == "stdio":
                        want = {"code": -32600}
                    if "code" in want:
                        assert reply.get("error", {}).get("code") == want["code"], (where, reply)
                    else:
                        assert "result" in reply, (where, reply)
                        absent = ABSENT_KEYS.get(msg["method"], set())
                        missing = set(want["result"]) - set(reply["result"]) - absent
                        assert not missing, (where, missing)
                        for path, reference in step.get("harvest", {}).items():
                            names.setdefault(reference, _at(reply["result"], path))
                        if msg["method"] == "turn/start":
                            turn_id = reply["result"]["turn"]["id"]
                            await _answer_until(
                                client,
                                lambda m, t=turn_id: (
                                    m.get("method") == "turn/completed"
                                    and m["params"]["turn"]["id"] == t
                                ),
                            )
                    checked += 1
    assert checked == sum(
        1 for c in SESSIONS["clients"][client_name] for s in c["steps"] if "id" in s["send"]
    )
