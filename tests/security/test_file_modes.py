"""Everything the server writes under its home is private to the user.

Covers: after a real turn through the CLI spawned with umask 022 (a login stored, a command
run, the thread renamed and archived), the home is 0700 (tightened from 0755, with a log
line), every directory under it 0700 and every file 0600 (rollouts, the SQLite index and its
-wal/-shm, auth.json); a command the agent runs still gets the user's umask; the stored API
key, printed by a command (``cat auth.json``), is blanked in the rollout.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

from tests.engine.test_turns import completed_turn, items_of, run_turn, start_thread
from tests.harness import StdioWire, spawn_stdio
from tests.security.helpers import files_containing, write_config
from tests.support import mock_model as mm

STORED_KEY = "sk-stored-0123456789abcdef-DO-NOT-LEAK"


def _modes(root: Path) -> dict[Path, int]:
    return {p: stat.S_IMODE(p.lstat().st_mode) for p in [root, *root.rglob("*")]}


async def test_home_and_every_file_are_private_whatever_the_umask(home: Path, model: Any) -> None:
    os.chmod(home, 0o755)
    write_config(home, model.base_url)
    (home / "config.toml").chmod(0o600)  # the user's own file; the server does not write it
    model.add(
        mm.sse_function_call(
            "call_1", "shell_command", {"command": f"umask; cat {home}/auth.json"}
        ),
        mm.sse_text("done"),
    )
    old = os.umask(0o022)
    try:
        client = StdioWire(await spawn_stdio(home, env={"MOCK_ACCESS": "sk-mock-access-key"}))
    finally:
        os.umask(old)
    try:
        await client.initialize()
        login = {"type": "apiKey", "apiKey": STORED_KEY}
        assert (await client.call("account/login/start", login)) == {"type": "apiKey"}
        tid = await start_thread(client, home)
        await run_turn(client, tid, "show the login")
        assert (await completed_turn(client))["status"] == "completed"
        await client.call("thread/name/set", {"threadId": tid, "name": "renamed"})
        await client.call("thread/archive", {"threadId": tid})
        modes = _modes(home)  # while the index is open: -wal and -shm exist
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    output = items_of(client, "item/completed", "commandExecution")[0]["aggregatedOutput"]
    assert output.splitlines()[0] == "0022"  # the command has the user's umask, not ours
    assert STORED_KEY in output  # the command really printed the key...
    names = {p.name for p in modes}
    assert {"state.sqlite", "state.sqlite-wal", "auth.json", "archived_sessions"} <= names
    assert any(n.startswith("rollout-") for n in names)
    wrong = {str(p): oct(m) for p, m in modes.items() if m != (0o700 if p.is_dir() else 0o600)}
    assert not wrong, wrong
    assert any("restricted home" in line for line in client.stderr_lines)
    # ...but no file under the home holds it, auth.json aside.
    assert files_containing(home, [STORED_KEY]) == [(home / "auth.json", STORED_KEY)]
    rollout = next(home.rglob("rollout-*.jsonl")).read_text()
    assert "[redacted]" in rollout


async def test_a_new_home_is_created_private(tmp_path: Path, model: Any) -> None:
    home = tmp_path / "fresh" / "home"
    old = os.umask(0o000)
    try:
        client = StdioWire(await spawn_stdio(home))
    finally:
        os.umask(old)
    try:
        await client.initialize()
        await client.call("thread/list", {})
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    modes = _modes(home)
    wrong = {str(p): oct(m) for p, m in modes.items() if m != (0o700 if p.is_dir() else 0o600)}
    assert not wrong, wrong
    assert not any("restricted home" in line for line in client.stderr_lines)
