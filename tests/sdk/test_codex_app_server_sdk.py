"""A second, independent client: ``codex-app-server-sdk`` 0.4.1 over WebSocket and stdio.

That SDK needs Python ≥ 3.12, so it runs in its own venv (``sdk312_python``, which skips and
says why in the test report when no such interpreter exists or pip cannot install it), as
``sdk_driver.py`` in a subprocess, against ``appserver serve --ws 127.0.0.1:0
--ws-token-file F`` or a server it spawns itself over stdio, with the offline scripted
provider. Covers: ``connect_websocket(url,
token)``, ``chat_once("Say hello.")``, and two approvals through its callback on the same
thread (accept runs the command, decline does not). Every message our server sent it goes to
the wire recorder (the driver logs its traffic).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.harness import TIMEOUT, server_env, start_ws_server
from tests.support.wire_recorder import RECORDER

DRIVER = Path(__file__).with_name("sdk_driver.py")


class DriverConnection:
    """The recorder's identity for the driver's one connection."""


def replay_to_recorder(wire_log: Path) -> int:
    conn = DriverConnection()
    count = 0
    for line in wire_log.read_text(encoding="utf-8").splitlines():
        entry = orjson.loads(line)
        if entry["dir"] == "out":
            RECORDER.sent(conn, entry["msg"])
        else:
            RECORDER.received(conn, entry["msg"])
            count += 1
    return count


@pytest.mark.parametrize("mode", ["websocket", "stdio"])
async def test_chat_once_and_approvals(
    mode: str, sdk312_python: Path, home: Path, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "script.yaml"
    script.write_text(
        f"""
rules:
  - when_contains: RUN_SHELL_A
    shell: "touch {work}/A"
  - when_contains: RUN_SHELL_B
    shell: "touch {work}/B"
  - when_tool_output: true
    text: "Command finished."
replies:
  - "Hello from the script."
""",
        encoding="utf-8",
    )
    (home / "config.toml").write_text(
        'approval_policy = "untrusted"\nsandbox_mode = "danger-full-access"\n', encoding="utf-8"
    )
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-token-for-the-sdk\n", encoding="utf-8")
    wire_log = tmp_path / "wire.jsonl"
    env = {"APPSERVER_SCRIPT": str(script)}
    server = None
    if mode == "websocket":
        server = await start_ws_server(home, "--ws-token-file", str(token_file), env=env)
        target = server.url
    else:
        argv = [sys.executable, "-m", "appserver", "serve", "--stdio", "--home", str(home)]
        target = "stdio:" + json.dumps(argv)
    try:
        proc = await asyncio.create_subprocess_exec(
            str(sdk312_python),
            str(DRIVER),
            target,
            str(token_file),
            str(wire_log),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            cwd=str(work),
            env=server_env(env),
        )
        try:
            out, err = await asyncio.wait_for(proc.communicate(), 8 * TIMEOUT)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    finally:
        if server is not None:
            await server.stop()
    if wire_log.exists():
        assert replay_to_recorder(wire_log) > 0
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    steps: dict[str, Any] = {}
    for line in out.decode().splitlines():
        entry = json.loads(line)
        steps[entry.pop("step")] = entry

    assert steps["initialize"]["result"]["raw"]["userAgent"]
    assert steps["hello"]["final_text"] == "Hello from the script."
    thread_id = steps["hello"]["thread_id"]

    accepted, declined = steps["RUN_SHELL_A"], steps["RUN_SHELL_B"]
    for step, marker in ((accepted, "A"), (declined, "B")):
        assert step["final_text"] == "Command finished."
        assert step["asked"]["kind"] == "CommandApprovalRequest"
        assert step["asked"]["thread_id"] == thread_id
        assert f"touch {work}/{marker}" in step["asked"]["command"]
    assert accepted["commands"] == ["completed"] and (work / "A").exists()
    assert declined["commands"] == ["declined"] and not (work / "B").exists()
