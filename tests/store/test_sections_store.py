"""The section and attachment tables in ``state.sqlite``: what survives a reopen and a rebuild
of the thread index for an outdated schema, the section order and entry times a move keeps,
the errors of a bad move, and a deleted thread leaving its section and attachments."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from appserver.store.index import ThreadStore
from tests.store.helpers import ThreadSpec, persist


def test_sections_survive_reopen_and_index_rebuild(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        for tid in ("t1", "t2"):
            persist(store, ThreadSpec(tid))
        store.sections.create("s1", "Work", {"color": "red", "icon": None})
        store.sections.move("t1", "s1", None)
        store.sections.move("t2", "s1", "t1")
        store.sections.add_attachment("a1", "t1", "pr", "k", {"n": 1})
    # An outdated thread schema makes the next open rebuild ``threads`` from the rollouts;
    # the section tables are not derived from rollouts and must stay.
    db = sqlite3.connect(tmp_path / "state.sqlite")
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()
    with ThreadStore(tmp_path) as store:
        assert store.sections.members("s1") == ["t2", "t1"]
        assert store.sections.get("s1") is not None
        found = store.sections.attachment("t1", "pr", "k")
        assert found is not None and found.payload == {"n": 1}
        records, more = store.list_by_section_position(
            offset=0, limit=10, sort_direction="desc", section_id="s1"
        )
        assert [r.id for r in records] == ["t2", "t1"] and more is False


def test_move_keeps_entry_time_within_a_section(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        for tid in ("t1", "t2", "t3"):
            persist(store, ThreadSpec(tid))
        store.sections.create("s1", "One", None)
        store.sections.create("s2", "Two", None)
        assert store.sections.move("t1", "s1", None) is True
        store.sections.move("t2", "s1", None)
        entered = store.sections.membership("t1")
        assert entered is not None
        # Within the same section: the position changes, the section does not.
        assert store.sections.move("t1", "s1", None) is False
        assert store.sections.members("s1") == ["t2", "t1"]
        again = store.sections.membership("t1")
        assert again is not None and again.entered_at == entered.entered_at
        with pytest.raises(KeyError):
            store.sections.move("t1", "nope", None)
        with pytest.raises(ValueError):
            store.sections.move("t3", "s2", "t1")  # t1 is not in s2
        with pytest.raises(ValueError):
            store.sections.move("t1", None, "t2")
        assert store.sections.members("s1") == ["t2", "t1"]  # a refused move changed nothing
        assert store.sections.move("t1", None, None) is True
        assert store.sections.membership("t1") is None


def test_deleting_a_thread_drops_its_membership_and_attachments(tmp_path: Path) -> None:
    with ThreadStore(tmp_path) as store:
        persist(store, ThreadSpec("t1"))
        store.sections.create("s1", "One", None)
        store.sections.move("t1", "s1", None)
        store.sections.add_attachment("a1", "t1", "pr", "k", None)
        store.delete("t1")
        assert store.sections.members("s1") == []
        assert store.sections.owners("pr", "k", None, 0, 10) == ([], False)
