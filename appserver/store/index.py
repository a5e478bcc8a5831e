"""The thread store: rollout files under ``$CODEX_HOME`` plus a SQLite index over them.

Owns ``ThreadStore``, the one object the engine uses for persisted threads: its lifecycle
(open = reconcile), record updates, paged listing, and archive/unarchive/delete file moves.
The pieces live beside it: ``layout`` (paths), ``sqlite_index`` (schema and statements),
``reconcile`` (files → index), ``record`` (``ThreadRecord``), ``paging`` (cursors).

The rollout files are the source of truth; the index is a cache that is reconciled with
them every time the store is opened (and rebuilt outright if it is missing or corrupt), so
a kill -9 at any point can only leave work for the next open, never a lasting disagreement.
Must never: write to or parse the body of a rollout beyond its metadata lines, scan files
on the listing path, or hold a transaction open across calls.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from appserver.store import private, reconcile
from appserver.store import sqlite_index as sql
from appserver.store.layout import Layout
from appserver.store.paging import SortDirection, SortKey
from appserver.store.record import ThreadRecord


class ThreadStore:
    """Rollout layout plus SQLite index under one home directory.

    Meant for a single thread (the asyncio loop): every call is a short synchronous
    SQLite statement or file rename.
    """

    def __init__(self, home: Path) -> None:
        self.layout = Layout.of(home)
        self.home = self.layout.home
        self.sessions_dir = self.layout.sessions_dir
        self.archived_dir = self.layout.archived_dir
        self.db_path = self.layout.db_path
        private.ensure_home(self.home)
        self._db: sqlite3.Connection
        self._open_index()

    # ----------------------------------------------------------------- lifecycle

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ThreadStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _open_index(self) -> None:
        self._db, healthy = sql.open_index(self.db_path)
        self._sync(force=not healthy)

    # ------------------------------------------------------------------- layout

    def rollout_path_for(self, thread_id: str, created_at: datetime) -> Path:
        """Where a new thread's rollout goes: ``sessions/YYYY/MM/DD/rollout-...-<id>.jsonl``."""
        return self.layout.rollout_path_for(thread_id, created_at)

    # ------------------------------------------------------------------ records

    def upsert(self, rec: ThreadRecord) -> None:
        """Insert or replace a thread's row (file stat kept only if the path is unchanged)."""
        sql.upsert(self._db, rec)

    def get(self, thread_id: str) -> ThreadRecord | None:
        return sql.get(self._db, thread_id)

    def touch(self, thread_id: str, updated_at: int, preview: str | None = None) -> None:
        """Record activity; ``preview`` (if given) replaces the stored preview."""
        sql.touch(self._db, thread_id, updated_at, preview)

    def set_name(self, thread_id: str, name: str | None) -> None:
        sql.set_name(self._db, thread_id, name)

    def set_git_info(self, thread_id: str, git_info: dict[str, Any] | None) -> None:
        sql.set_git_info(self._db, thread_id, git_info)

    # ------------------------------------------------------------------ listing

    def list(
        self,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        sort_key: SortKey = "created_at",
        sort_direction: SortDirection = "desc",
        archived: bool | None = None,
        model_providers: Sequence[str] | None = None,
        cwd: str | Sequence[str] | None = None,
        search_term: str | None = None,
        source_kinds: Sequence[str] | None = None,
        excluded_ids: Sequence[str] | None = None,
    ) -> tuple[builtins.list[ThreadRecord], str | None]:
        """One page of threads and the cursor of the next page (None on the last page).

        ``archived`` None/False lists live threads, True archived ones. Empty or None
        ``model_providers`` / ``cwd`` / ``source_kinds`` mean no filter (mapping the
        protocol's default source kinds is the caller's business). ``search_term`` is a
        case-insensitive substring match on preview and name. ``excluded_ids`` are left out
        before the page is cut.
        """
        return sql.list_page(
            self._db,
            cursor=cursor,
            limit=limit,
            sort_key=sort_key,
            sort_direction=sort_direction,
            archived=archived,
            model_providers=model_providers,
            cwd=cwd,
            search_term=search_term,
            source_kinds=source_kinds,
            excluded_ids=excluded_ids,
        )

    # ----------------------------------------------------------------- archive

    def archive(self, thread_id: str) -> Path:
        """Move the rollout into ``archived_sessions/`` and flag the row; returns the new path."""
        rec = self._require(thread_id)
        if rec.archived:
            return rec.path
        return self._move(rec, self.archived_dir / rec.path.name, archived=True)

    def unarchive(self, thread_id: str) -> Path:
        """Move the rollout back under ``sessions/`` (its creation date's folder)."""
        rec = self._require(thread_id)
        if not rec.archived:
            return rec.path
        created = datetime.fromtimestamp(rec.created_at, UTC)
        target_dir = self.rollout_path_for(rec.id, created).parent
        return self._move(rec, target_dir / rec.path.name, archived=False)

    def delete(self, thread_id: str) -> None:
        """Remove the thread's rollout (live or archived) and its row. The file goes first: a
        crash between the two leaves a row without a file, which the next open drops."""
        rec = self._require(thread_id)
        rec.path.unlink(missing_ok=True)
        sql.delete(self._db, thread_id)

    def _require(self, thread_id: str) -> ThreadRecord:
        rec = self.get(thread_id)
        if rec is None:
            raise KeyError(thread_id)
        return rec

    def _move(self, rec: ThreadRecord, target: Path, *, archived: bool) -> Path:
        if target.exists():
            raise FileExistsError(f"refusing to overwrite {target}")
        private.ensure_dir(target.parent)
        # A crash between the rename and the UPDATE is repaired on the next open: the
        # file is found at its new path and the row is re-pointed (archived = location).
        os.rename(rec.path, target)
        sql.set_location(self._db, rec.id, target, archived=archived)
        return target

    # ----------------------------------------------------------------- rebuild

    def rebuild(self) -> None:
        """Re-read every rollout file and drop rows whose file is gone.

        Index-only data (git info set through ``set_git_info``, a name or preview the
        file does not carry) survives for rows that still exist.
        """
        self._sync(force=True)

    def _sync(self, *, force: bool) -> None:
        """Bring the index in line with the files; ``force`` re-reads unchanged files too."""
        reconcile.sync(self._db, self.layout, force=force)
