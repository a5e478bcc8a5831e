"""A full disk during a turn: the real CLI with its home on a 4 MiB tmpfs.

The server runs in its own mount namespace (``unshare -m``, root only) with a tmpfs mounted
on its home; the test reaches that tmpfs through ``/proc/<pid>/root`` to fill it and free it
again. Skipped, saying why, where that is not possible.

Covers: with the disk filled before a turn, the client gets a ``warning`` naming the failed
write and the turn's ``turn/completed``; ``thread/read`` meanwhile shows the turn with its
answer (the lines waiting to be written included); once space returns the waiting lines (and
the index row) are written without any client action, and the next turn's lines follow on
lines of their own; the server stays up throughout, with no traceback; a restart on a copy of
that home reads every turn back completed with its text.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appserver.store import history
from appserver.store.rollout import read_rollout
from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import run_turn, start_thread
from tests.harness import TIMEOUT, WebSocketWire, start_ws_server, ws_connect
from tests.support import mock_model as mm

TMPFS_SIZE = "4m"
# More than the slack of the rollout file's last tmpfs page, so its writes fail too.
ANSWER = "the answer written on a full disk. " * 400


def _tmpfs_possible(where: Path) -> str | None:
    """None when a tmpfs can be mounted in a new mount namespace here, else why not."""
    if os.geteuid() != 0:
        return "needs root to mount a tmpfs in a mount namespace"
    if shutil.which("unshare") is None:
        return "needs unshare (util-linux)"
    where.mkdir()
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs '{where}'"],
        capture_output=True,
        timeout=TIMEOUT,
    )
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a mount namespace: {probe.stderr.decode().strip()}"
    return None


def _fill(root: Path) -> int:
    """Write a file until the filesystem is full; its size."""
    size = 0
    chunk = b"\0" * 65536
    with open(root / "filler", "wb", buffering=0) as f:
        while True:
            try:
                size += f.write(chunk)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
    while True:  # the last bytes too
        try:
            with open(root / "filler", "ab", buffering=0) as f:
                size += f.write(b"\0" * 512)
        except OSError:
            return size


async def _turn(c: WebSocketWire, tid: str, text: str) -> tuple[dict[str, Any], list[Any]]:
    turn_id = await run_turn(c, tid, text)
    done = await c.wait_for(
        lambda m: m.get("method") == "turn/completed" and m["params"]["turn"]["id"] == turn_id,
        TIMEOUT,
    )
    return done["params"]["turn"], [m for m in c.seen if m.get("method") == "warning"]


async def test_a_full_disk_during_a_turn(tmp_path: Path, model: Any) -> None:
    why = _tmpfs_possible(tmp_path / "probe")
    if why is not None:
        pytest.skip(why)
    home = tmp_path / "home"
    home.mkdir()
    seed = tmp_path / "seed"
    seed.mkdir()
    write_config(seed, model.base_url)
    script = (
        f"mount -t tmpfs -o size={TMPFS_SIZE} tmpfs '{home}' && "
        f"cp '{seed / 'config.toml'}' '{home}/config.toml' && "
        f"exec '{sys.executable}' -m appserver \"$@\""
    )
    launcher = ["unshare", "-m", "sh", "-c", script, "sh"]
    model.add(
        mm.sse_text("written before"),
        mm.sse_text(ANSWER, chunks=[ANSWER[:100], ANSWER[100:]]),
        mm.sse_text("written after"),
    )
    server = await start_ws_server(home, env=ENV, launcher=launcher)
    inside = Path(f"/proc/{server.proc.pid}/root{home}")
    copy = tmp_path / "copy"
    try:
        c = await ws_connect(server.url)
        assert "result" in await c.initialize()
        tid = await start_thread(c, home)
        first, warnings = await _turn(c, tid, "before")
        assert first["status"] == "completed" and not warnings

        filled = await asyncio.to_thread(_fill, inside)
        print(f"\nfilled the tmpfs with {filled / 2**20:.1f} MiB", file=sys.stderr)
        second, warnings = await _turn(c, tid, "on a full disk")
        assert second["status"] == "completed"
        assert warnings, "the client was not told about the failed write"
        messages = [w["params"]["message"] for w in warnings]
        assert all(w["params"]["threadId"] == tid for w in warnings)
        transcript = [m for m in messages if "Failed to save the conversation transcript" in m]
        assert transcript and "No space left on device" in transcript[0]
        print("warnings:\n" + "\n".join(messages), file=sys.stderr)
        read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
        shown = read["thread"]["turns"][-1]
        assert shown["status"] == "completed"
        assert shown["items"][-1]["text"] == ANSWER

        (inside / "filler").unlink()
        await server.wait_stderr("saved again after failed writes")
        third, _ = await _turn(c, tid, "after")
        assert third["status"] == "completed"
        await c.close()

        rollouts = list((inside / "sessions").rglob("*.jsonl"))
        assert len(rollouts) == 1
        turns = history.rebuild_turns(read_rollout(rollouts[0]).lines)
        assert [t["status"] for t in turns] == ["completed"] * 3
        assert [t["items"][-1]["text"] for t in turns] == [
            "written before",
            ANSWER,
            "written after",
        ]
        await asyncio.to_thread(shutil.copytree, inside, copy)
        assert server.proc.returncode is None
        assert not any("Traceback" in line for line in server.stderr_lines)
    finally:
        await server.stop()

    again = await start_ws_server(copy, env=ENV)
    try:
        c = await ws_connect(again.url)
        assert "result" in await c.initialize()
        read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
        turns = read["thread"]["turns"]
        assert [t["status"] for t in turns] == ["completed"] * 3
        assert turns[1]["items"][-1]["text"] == ANSWER
        listed = await c.call("thread/list", {})
        assert [t["id"] for t in listed["data"]] == [tid]
        await c.close()
    finally:
        await again.stop()
