"""The SQLite index of threads (``state.sqlite``): schema, opening, and its statements.

Owns the ``threads`` table (schema and version), opening the database (0600 files, WAL,
health check, rebuild of a corrupt or outdated file), mapping rows to and from
``ThreadRecord``, and every SQL statement run on it.
Must never: look at rollout files (reconciliation does), decide what a record should hold,
or hold a transaction open across calls. Every function is one short synchronous statement
(or one ``transaction``) on a connection in autocommit mode.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from appserver.store import private
from appserver.store.paging import SortDirection, SortKey, decode_cursor, encode_cursor, page_size
from appserver.store.record import ThreadRecord

logger = logging.getLogger("appserver.store")

SCHEMA_VERSION = 1

_SORT_COLUMNS: dict[str, str] = {"created_at": "created_at", "updated_at": "updated_at"}

_SCHEMA = """
CREATE TABLE threads (
    id TEXT PRIMARY KEY,
    path TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    cwd TEXT NOT NULL,
    model_provider TEXT NOT NULL,
    model TEXT,
    preview TEXT NOT NULL,
    name TEXT,
    archived INTEGER NOT NULL,
    source TEXT NOT NULL,
    cli_version TEXT NOT NULL,
    forked_from_id TEXT,
    git_info TEXT,
    -- casefolded copies so searching needs no per-row function call
    search_preview TEXT NOT NULL,
    search_name TEXT NOT NULL,
    -- stat of the file when the row was last read from it; NULL = never read
    file_mtime_ns INTEGER,
    file_size INTEGER
);
CREATE INDEX threads_by_created ON threads (archived, created_at, id);
CREATE INDEX threads_by_updated ON threads (archived, updated_at, id);
CREATE INDEX threads_by_path ON threads (path);
"""

_COLUMNS = (
    "id, path, created_at, updated_at, cwd, model_provider, model, preview, name, archived, "
    "source, cli_version, forked_from_id, git_info"
)


@dataclass(frozen=True)
class IndexedStat:
    """What the index remembers of a row's file: the stat when it was last read (or None)."""

    thread_id: str
    mtime_ns: int | None
    size: int | None


# ------------------------------------------------------------------ opening


def open_index(db_path: Path) -> tuple[sqlite3.Connection, bool]:
    """The connection, and whether the existing index was healthy (False: it was just
    created or rebuilt empty, so every rollout must be re-read)."""
    existed = db_path.exists()
    try:
        db = _connect(db_path)
        healthy = existed and _is_healthy(db)
    except sqlite3.DatabaseError:
        logger.warning("thread index %s is corrupt; rebuilding it", db_path)
        _delete_index_files(db_path)
        db = _connect(db_path)
        healthy = False
    if not healthy:
        _reset_schema(db)
    return db, healthy


def _delete_index_files(db_path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)


def _connect(path: Path) -> sqlite3.Connection:
    # Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the mode of
    # the database file (and would create the database itself 0644).
    private.create_file(path)
    # Autocommit mode: single statements commit on their own; multi-statement work uses
    # explicit BEGIN/COMMIT (see transaction).
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        for suffix in ("-wal", "-shm"):  # left 0644 by an older version
            private.restrict_file(Path(f"{path}{suffix}"))
        # WAL + NORMAL: a kill -9 loses nothing committed; only power loss may lose the
        # last transactions, which the next open's reconcile re-derives from the files.
        db.execute("PRAGMA synchronous = NORMAL")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _is_healthy(db: sqlite3.Connection) -> bool:
    """False if the schema is outdated; raises DatabaseError (closing ``db``) if corrupt."""
    try:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version != SCHEMA_VERSION:
            return False
        result = db.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError:
        db.close()
        raise
    if result != "ok":
        db.close()
        raise sqlite3.DatabaseError(f"quick_check: {result}")
    return True


def _reset_schema(db: sqlite3.Connection) -> None:
    db.executescript(
        "BEGIN IMMEDIATE; DROP TABLE IF EXISTS threads;"
        f"{_SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
    )


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# --------------------------------------------------------------- statements


def upsert(db: sqlite3.Connection, rec: ThreadRecord) -> None:
    """Insert or replace a thread's row (file stat kept only if the path is unchanged)."""
    db.execute(
        f"""
        INSERT INTO threads ({_COLUMNS}, search_preview, search_name)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET
            file_mtime_ns = CASE WHEN path = excluded.path THEN file_mtime_ns END,
            file_size = CASE WHEN path = excluded.path THEN file_size END,
            path = excluded.path, created_at = excluded.created_at,
            updated_at = excluded.updated_at, cwd = excluded.cwd,
            model_provider = excluded.model_provider, model = excluded.model,
            preview = excluded.preview, name = excluded.name,
            archived = excluded.archived, source = excluded.source,
            cli_version = excluded.cli_version, forked_from_id = excluded.forked_from_id,
            git_info = excluded.git_info, search_preview = excluded.search_preview,
            search_name = excluded.search_name
        """,
        _record_params(rec),
    )


def get(db: sqlite3.Connection, thread_id: str) -> ThreadRecord | None:
    row = db.execute(f"SELECT {_COLUMNS} FROM threads WHERE id = ?", (thread_id,)).fetchone()
    return _row_to_record(row) if row is not None else None


def touch(db: sqlite3.Connection, thread_id: str, updated_at: int, preview: str | None) -> None:
    if preview is None:
        _update(db, thread_id, "updated_at = ?", (updated_at,))
    else:
        _update(
            db,
            thread_id,
            "updated_at = ?, preview = ?, search_preview = ?",
            (updated_at, preview, preview.casefold()),
        )


def set_name(db: sqlite3.Connection, thread_id: str, name: str | None) -> None:
    _update(db, thread_id, "name = ?, search_name = ?", (name, _fold(name)))


def set_git_info(db: sqlite3.Connection, thread_id: str, git_info: dict[str, Any] | None) -> None:
    _update(db, thread_id, "git_info = ?", (_dump_json(git_info),))


def _update(
    db: sqlite3.Connection, thread_id: str, assignments: str, params: tuple[Any, ...]
) -> None:
    """KeyError if there is no such row."""
    cursor = db.execute(f"UPDATE threads SET {assignments} WHERE id = ?", (*params, thread_id))
    if cursor.rowcount == 0:
        raise KeyError(thread_id)


def set_location(db: sqlite3.Connection, thread_id: str, path: Path, *, archived: bool) -> None:
    db.execute(
        "UPDATE threads SET path = ?, archived = ? WHERE id = ?",
        (str(path), int(archived), thread_id),
    )


def set_file_stat(db: sqlite3.Connection, thread_id: str, mtime_ns: int, size: int) -> None:
    db.execute(
        "UPDATE threads SET file_mtime_ns = ?, file_size = ? WHERE id = ?",
        (mtime_ns, size, thread_id),
    )


def delete(db: sqlite3.Connection, thread_id: str) -> None:
    db.execute("DELETE FROM threads WHERE id = ?", (thread_id,))


def delete_path(db: sqlite3.Connection, path: str) -> None:
    db.execute("DELETE FROM threads WHERE path = ?", (path,))


def indexed_stats(db: sqlite3.Connection) -> dict[str, IndexedStat]:
    """Every row's file stat, by path."""
    rows = db.execute("SELECT path, id, file_mtime_ns, file_size FROM threads")
    return {path: IndexedStat(tid, mtime, size) for path, tid, mtime, size in rows}


def list_page(
    db: sqlite3.Connection,
    *,
    cursor: str | None,
    limit: int | None,
    sort_key: SortKey,
    sort_direction: SortDirection,
    archived: bool | None,
    model_providers: Sequence[str] | None,
    cwd: str | Sequence[str] | None,
    search_term: str | None,
    source_kinds: Sequence[str] | None,
    excluded_ids: Sequence[str] | None,
) -> tuple[list[ThreadRecord], str | None]:
    """One page of rows and the next page's cursor (see ``ThreadStore.list``)."""
    column = _SORT_COLUMNS.get(sort_key)
    if column is None:
        raise ValueError(f"invalid sort key: {sort_key!r}")
    if sort_direction not in ("asc", "desc"):
        raise ValueError(f"invalid sort direction: {sort_direction!r}")
    size = page_size(limit)
    where, params = _filters(archived, model_providers, cwd, search_term, source_kinds)
    if excluded_ids:
        where.append(f"id NOT IN ({', '.join('?' * len(excluded_ids))})")
        params.extend(excluded_ids)
    if cursor is not None:
        value, after_id = decode_cursor(cursor, sort_key)
        op = "<" if sort_direction == "desc" else ">"
        where.append(f"({column}, id) {op} (?, ?)")
        params.extend((value, after_id))
    order = "DESC" if sort_direction == "desc" else "ASC"
    rows = db.execute(
        f"SELECT {_COLUMNS} FROM threads WHERE {' AND '.join(where)} "
        f"ORDER BY {column} {order}, id {order} LIMIT ?",
        (*params, size + 1),
    ).fetchall()
    records = [_row_to_record(row) for row in rows[:size]]
    has_more = len(rows) > size
    return records, encode_cursor(records[-1], sort_key) if has_more else None


# ------------------------------------------------------------------ mapping


def _record_params(rec: ThreadRecord) -> tuple[Any, ...]:
    return (
        rec.id,
        str(rec.path),
        rec.created_at,
        rec.updated_at,
        rec.cwd,
        rec.model_provider,
        rec.model,
        rec.preview,
        rec.name,
        int(rec.archived),
        rec.source,
        rec.cli_version,
        rec.forked_from_id,
        _dump_json(rec.git_info),
        rec.preview.casefold(),
        _fold(rec.name),
    )


def _row_to_record(row: tuple[Any, ...]) -> ThreadRecord:
    (tid, path, created, updated, cwd, provider, model, preview, name, archived) = row[:10]
    source, cli_version, forked_from_id, git_info = row[10:]
    return ThreadRecord(
        id=tid,
        path=Path(path),
        created_at=created,
        updated_at=updated,
        cwd=cwd,
        model_provider=provider,
        model=model,
        preview=preview,
        name=name,
        archived=bool(archived),
        source=source,
        cli_version=cli_version,
        forked_from_id=forked_from_id,
        git_info=orjson.loads(git_info) if git_info is not None else None,
    )


def _filters(
    archived: bool | None,
    model_providers: Sequence[str] | None,
    cwd: str | Sequence[str] | None,
    search_term: str | None,
    source_kinds: Sequence[str] | None,
) -> tuple[list[str], list[Any]]:
    where = ["archived = ?"]
    params: list[Any] = [int(bool(archived))]
    for column, given in (
        ("model_provider", model_providers),
        ("cwd", cwd),
        ("source", source_kinds),
    ):
        # A bare string is a Sequence[str] too; never let it become a list of letters.
        values = [given] if isinstance(given, str) else given
        if values:
            where.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    if search_term:
        where.append("(instr(search_preview, ?) > 0 OR instr(search_name, ?) > 0)")
        params.extend((search_term.casefold(), search_term.casefold()))
    return where, params


def _fold(text: str | None) -> str:
    return text.casefold() if text else ""


def _dump_json(value: dict[str, Any] | None) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None
