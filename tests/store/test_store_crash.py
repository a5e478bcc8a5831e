"""A real kill -9 of a process writing threads: the reopened index must match the files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from appserver.store.index import ThreadStore
from appserver.store.record import ThreadRecord
from appserver.store.rollout import read_rollout

REPO_ROOT = Path(__file__).resolve().parents[2]

# The child follows the server's write order: file, index row, more lines, touch, and
# for every third thread a rename + name change, so the kill lands between any of them.
CHILD = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path

    from appserver.store.index import ThreadStore
    from appserver.store.record import ThreadRecord
    from appserver.store.rollout import RolloutWriter

    store = ThreadStore(Path(sys.argv[1]))
    i = 0
    while True:
        tid = f"t{i:05d}"
        created = datetime.now(UTC)
        path = store.rollout_path_for(tid, created)
        meta = {"id": tid, "timestamp": created.isoformat(), "cwd": "/w",
                "model_provider": "p", "source": "vscode", "cli_version": "0"}
        with RolloutWriter(path) as writer:
            writer.append("session_meta", meta)
            now = int(created.timestamp())
            store.upsert(ThreadRecord(tid, path, now, now, "/w", "p"))
            writer.append("event_msg", {"type": "user_message", "message": f"m{i}"})
            store.touch(tid, now, preview=f"m{i}")
            if i % 3 == 0:
                writer.append("event_msg", {"type": "thread_name_updated", "thread_name": tid})
                store.set_name(tid, tid)
                store.archive(tid)
        print(i, flush=True)
        i += 1
    """
)


def files_on_disk(home: Path) -> dict[str, tuple[Path, bool]]:
    found: dict[str, tuple[Path, bool]] = {}
    for root, archived in ((home / "sessions", False), (home / "archived_sessions", True)):
        for path in root.rglob("rollout-*.jsonl"):
            lines = read_rollout(path).lines
            if lines and lines[0]["type"] == "session_meta":
                found[lines[0]["payload"]["id"]] = (path, archived)
    return found


def every_row(store: ThreadStore) -> list[ThreadRecord]:
    rows: list[ThreadRecord] = []
    for archived in (False, True):
        cursor = None
        while True:
            page, cursor = store.list(cursor=cursor, limit=100, archived=archived)
            rows.extend(page)
            if cursor is None:
                break
    return rows


def test_index_matches_files_after_kill_9(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert child.stdout is not None
    for _ in range(40):
        assert child.stdout.readline(), "child died before being killed"
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    child.stdout.close()

    with ThreadStore(tmp_path) as store:
        rows = every_row(store)
    on_disk = files_on_disk(tmp_path)
    assert len(on_disk) >= 40
    assert {r.id: (r.path, r.archived) for r in rows} == on_disk
    for row in rows:
        assert row.preview in ("", f"m{int(row.id[1:])}")
        if row.archived:
            assert row.name == row.id
