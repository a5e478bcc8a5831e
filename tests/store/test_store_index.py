"""ThreadStore: layout, paging, filters, archive moves and reconciliation with the files."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from appserver.store.index import ThreadStore
from appserver.store.paging import SortDirection, SortKey, encode_cursor
from appserver.store.record import ThreadRecord
from appserver.store.rollout import RolloutWriter

from .helpers import BASE_TIME, ThreadSpec, persist, record_for, write_rollout

SORTS: list[tuple[SortKey, SortDirection]] = [
    ("created_at", "asc"),
    ("created_at", "desc"),
    ("updated_at", "asc"),
    ("updated_at", "desc"),
]


def sixty(store: ThreadStore) -> list[ThreadRecord]:
    """60 threads; created_at has ties (3 per second) so paging must break them by id."""
    return [
        persist(
            store,
            ThreadSpec(
                f"thread-{i:03d}",
                created_at=BASE_TIME + i // 3,
                updated_at=BASE_TIME + 1000 - i,
                user_text=f"message number {i}",
            ),
        )
        for i in range(60)
    ]


def all_pages(store: ThreadStore, limit: int, **kwargs: Any) -> list[list[ThreadRecord]]:
    pages = []
    cursor = None
    while True:
        page, cursor = store.list(cursor=cursor, limit=limit, **kwargs)
        pages.append(page)
        if cursor is None:
            return pages


def ids(records: list[ThreadRecord]) -> list[str]:
    return [r.id for r in records]


def test_rollout_path_layout(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        path = store.rollout_path_for("abc", datetime(2026, 11, 25, 2, 25, 6, 529000, UTC))
    assert path == (tmp_path / "sessions/2026/11/25/rollout-2026-11-25T02-25-06-abc.jsonl")


def test_fresh_home_has_wal_index(tmp_path: Path) -> None:
    ThreadStore(tmp_path).close()
    db = sqlite3.connect(tmp_path / "state.sqlite")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_record_updates(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        rec = persist(store, ThreadSpec("t1"))
        assert store.get("t1") == rec
        assert store.get("nope") is None
        store.touch("t1", BASE_TIME + 50)
        store.touch("t1", BASE_TIME + 60, preview="new preview")
        store.set_name("t1", "My thread")
        git = {"sha": "abc", "branch": "main", "originUrl": None}
        store.set_git_info("t1", git)
        got = store.get("t1")
        assert got is not None
        assert (got.updated_at, got.preview, got.name, got.git_info) == (
            BASE_TIME + 60,
            "new preview",
            "My thread",
            git,
        )
        for call in (
            lambda: store.touch("nope", 1),
            lambda: store.set_name("nope", "x"),
            lambda: store.set_git_info("nope", None),
            lambda: store.archive("nope"),
            lambda: store.unarchive("nope"),
        ):
            with pytest.raises(KeyError):
                call()


@pytest.mark.parametrize(("sort_key", "direction"), SORTS)
def test_paging_visits_every_thread_once_in_order(
    tmp_path: Path, sort_key: Any, direction: Any
) -> None:
    with ThreadStore(tmp_path) as store:
        created = sixty(store)
        pages = all_pages(store, 7, sort_key=sort_key, sort_direction=direction)
    assert [len(p) for p in pages] == [7] * 8 + [4]
    seen = [r for page in pages for r in page]
    assert sorted(ids(seen)) == sorted(ids(created))

    def key(r: ThreadRecord) -> tuple[int, str]:
        return (getattr(r, sort_key), r.id)

    assert seen == sorted(seen, key=key, reverse=direction == "desc")


def test_default_limit_cap_and_last_page(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        sixty(store)
        page, cursor = store.list()
        assert len(page) == 25 and cursor is not None
        assert ids(page)[0] == "thread-059"  # newest created first by default
        assert len(store.list(limit=0)[0]) == 25
        assert len(store.list(limit=-3)[0]) == 25
        page, cursor = store.list(limit=60)
        assert len(page) == 60 and cursor is None
        for i in range(60, 120):
            store.upsert(ThreadRecord(f"extra-{i}", tmp_path / f"x{i}", i, i, "/", "p"))
        page, cursor = store.list(limit=1000)
        assert len(page) == 100 and cursor is not None


def test_invalid_cursor(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        rec = persist(store, ThreadSpec("t1"))
        for bad in ("garbage!", "", "bm9jb2xvbg==", "é"):
            with pytest.raises(ValueError, match="invalid cursor"):
                store.list(cursor=bad)
        with pytest.raises(ValueError, match="invalid cursor"):
            store.list(cursor=encode_cursor(rec, "created_at"), sort_key="updated_at")


def test_backwards_cursor_from_first_record(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        sixty(store)
        first, cursor = store.list(limit=10)
        second, _ = store.list(limit=10, cursor=cursor)
        back, _ = store.list(
            limit=10, cursor=encode_cursor(second[0], "created_at"), sort_direction="asc"
        )
    assert ids(back) == list(reversed(ids(first)))


def test_filters(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        persist(store, ThreadSpec("a", created_at=BASE_TIME + 1, model_provider="openai"))
        persist(store, ThreadSpec("b", created_at=BASE_TIME + 2, model_provider="mock", cwd="/o"))
        persist(store, ThreadSpec("c", created_at=BASE_TIME + 3, user_text="Fix the Ünicode BUG"))
        persist(store, ThreadSpec("d", created_at=BASE_TIME + 4, name="Release PLAN"))
        persist(store, ThreadSpec("e", created_at=BASE_TIME + 5, source="cli"))
        store.archive("e")

        def listed(**kwargs: Any) -> list[str]:
            return ids(store.list(**kwargs)[0])

        assert listed() == ["d", "c", "b", "a"]
        assert listed(archived=False) == ["d", "c", "b", "a"]
        assert listed(archived=True) == ["e"]
        assert listed(model_providers=["mock"]) == ["b"]
        assert listed(model_providers=["mock", "openai"]) == ["d", "c", "b", "a"]
        assert listed(model_providers=[]) == ["d", "c", "b", "a"]
        assert listed(cwd="/o") == ["b"]
        assert listed(cwd=["/o", "/work/project"]) == ["d", "c", "b", "a"]
        assert listed(search_term="ünicode bug") == ["c"]
        assert listed(search_term="plan") == ["d"]
        assert listed(search_term="HELLO") == ["d", "b", "a"]  # default preview text
        assert listed(search_term="%") == []
        assert listed(source_kinds=["cli"], archived=True) == ["e"]
        assert listed(source_kinds=["cli"]) == []


def test_archive_and_unarchive_move_files(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        rec = persist(store, ThreadSpec("t1", created_at=BASE_TIME))
        archived_path = store.archive("t1")
        assert archived_path == tmp_path / "archived_sessions" / rec.path.name
        assert archived_path.is_file() and not rec.path.exists()
        assert store.archive("t1") == archived_path  # already archived: no-op
        got = store.get("t1")
        assert got is not None and got.archived and got.path == archived_path
        assert ids(store.list()[0]) == []

        restored = store.unarchive("t1")
        assert restored == rec.path
        assert restored.is_file() and not archived_path.exists()
        got = store.get("t1")
        assert got is not None and not got.archived
        assert ids(store.list()[0]) == ["t1"]


def test_archive_of_unmaterialized_thread_fails(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        spec = ThreadSpec("t1")
        store.upsert(record_for(store, spec))
        with pytest.raises(FileNotFoundError):
            store.archive("t1")


def listing(store: ThreadStore) -> list[list[ThreadRecord]]:
    return [
        store.list(limit=100, sort_key=key, sort_direction=direction, archived=archived)[0]
        for key, direction in SORTS
        for archived in (False, True)
    ]


def test_deleted_index_rebuilds_identical_listing(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        sixty(store)
        for i in range(0, 60, 7):
            store.archive(f"thread-{i:03d}")
        before = listing(store)
    (tmp_path / "state.sqlite").unlink()
    for suffix in ("-wal", "-shm"):
        (tmp_path / f"state.sqlite{suffix}").unlink(missing_ok=True)
    with ThreadStore(tmp_path) as store:
        assert listing(store) == before
        store.rebuild()
        assert listing(store) == before


def test_corrupt_index_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with ThreadStore(tmp_path) as store:
        created = sixty(store)
    (tmp_path / "state.sqlite").write_bytes(b"this is not a database" * 100)
    with caplog.at_level(logging.WARNING, logger="appserver.store"):
        store = ThreadStore(tmp_path)
    with store:
        assert sorted(ids(store.list(limit=100)[0])) == sorted(ids(created))
    assert any("corrupt" in r.getMessage() for r in caplog.records)


def test_old_schema_is_rebuilt(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        persist(store, ThreadSpec("t1"))
    db = sqlite3.connect(tmp_path / "state.sqlite")
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()
    with ThreadStore(tmp_path) as store:
        assert ids(store.list()[0]) == ["t1"]


def test_file_added_behind_the_index_is_picked_up(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        persist(store, ThreadSpec("known"))
        spec = ThreadSpec("sneaky", created_at=BASE_TIME + 9, name="Named")
        sneaky = record_for(store, spec)
    # Written while the store was closed (like a crash between file write and index).
    write_rollout(sneaky.path, spec)
    with ThreadStore(tmp_path) as store:
        assert store.get("sneaky") == sneaky
        assert ids(store.list()[0]) == ["sneaky", "known"]


def test_vanished_file_row_is_dropped(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        gone = persist(store, ThreadSpec("gone"))
        persist(store, ThreadSpec("kept"))
        store.upsert(record_for(store, ThreadSpec("never_written", created_at=BASE_TIME + 5)))
    gone.path.unlink()
    with ThreadStore(tmp_path) as store:
        assert store.get("gone") is None
        assert store.get("never_written") is None
        assert ids(store.list()[0]) == ["kept"]


def test_file_changed_behind_the_index_is_reread(tmp_path: Path) -> None:
    git = {"sha": "abc", "branch": "main", "originUrl": None}
    with ThreadStore(tmp_path) as store:
        rec = persist(store, ThreadSpec("t1"))
        store.set_git_info("t1", git)
    with RolloutWriter(rec.path) as writer:
        writer.append("event_msg", {"type": "thread_name_updated", "thread_name": "Later"})
    with ThreadStore(tmp_path) as store:
        got = store.get("t1")
        assert got is not None
        assert got.name == "Later"
        assert got.git_info == git  # index-only data survives a re-read
        assert got.updated_at >= int(time.time()) - 60  # the file's fresh mtime


def test_crash_between_archive_rename_and_index_update(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        rec = persist(store, ThreadSpec("t1"))
    moved = tmp_path / "archived_sessions" / rec.path.name
    moved.parent.mkdir()
    shutil.move(rec.path, moved)
    with ThreadStore(tmp_path) as store:
        got = store.get("t1")
        assert got is not None and got.archived and got.path == moved
        assert store.unarchive("t1") == rec.path


def test_unusable_files_are_ignored(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "sessions" / "2026" / "01" / "01" / "rollout-2026-01-01T00-00-00-bad.jsonl"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b'{"timestamp": "x", "type": "event_msg", "payload": {}}\n{"torn')
    (bad.parent / "notes.txt").write_text("not a rollout")
    with caplog.at_level(logging.WARNING, logger="appserver.store"):
        store = ThreadStore(tmp_path)
    with store:
        assert store.list() == ([], None)
    assert any(str(bad) in r.getMessage() for r in caplog.records)


def test_duplicate_rollouts_for_one_id_settle_on_one(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        rec = persist(store, ThreadSpec("t1", updated_at=BASE_TIME + 100))
    copy = tmp_path / "archived_sessions" / rec.path.name
    copy.parent.mkdir()
    shutil.copy2(rec.path, copy)  # same mtime: the live copy wins the tie
    for _ in range(2):
        with ThreadStore(tmp_path) as store:
            assert store.get("t1") == rec
            assert store.list(archived=True) == ([], None)


def test_sixty_thread_page_is_fast(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        sixty(store)
        timings = []
        for _ in range(50):
            start = time.perf_counter()
            store.list(limit=25, sort_key="updated_at", search_term="message")
            timings.append(time.perf_counter() - start)
    assert min(timings) < 0.001
