"""The thread index: where rollout files live and a SQLite index over their metadata.

Owns the ``$CODEX_HOME`` layout (``sessions/YYYY/MM/DD/``, ``archived_sessions/``), the
``state.sqlite`` index, paged listing, and archive/unarchive file moves.

The rollout files are the source of truth; the index is a cache that is reconciled with
them every time the store is opened (and rebuilt outright if it is missing or corrupt), so
a kill -9 at any point can only leave work for the next open, never a lasting disagreement.
Must never: write to or parse the body of a rollout beyond its metadata lines, scan files
on the listing path, or hold a transaction open across calls.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import orjson

from appserver.store import private
from appserver.store.history import thread_meta
from appserver.store.rollout import decode_line
from appserver.store.sections import POSITION_SQL, SectionStore, member_filter

logger = logging.getLogger("appserver.store")

SortKey = Literal["created_at", "updated_at"]
# ``section_id`` of ``list``: this value lists every thread, None the unsectioned ones.
ANY_SECTION = "*any*"
SortDirection = Literal["asc", "desc"]

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
SCHEMA_VERSION = 1

_SORT_COLUMNS: dict[str, str] = {"created_at": "created_at", "updated_at": "updated_at"}
# Only lines carrying these markers can affect indexed metadata; everything else in a
# (possibly large) rollout is skipped without being decoded.
_META_MARKERS = (b'"session_meta"', b'"thread_name_updated"', b'"user_message"')

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


@dataclass
class ThreadRecord:
    """Indexed metadata of one persisted thread.

    ``source`` is the SessionSource string (``"vscode"``, ``"cli"``, ...); structured
    sources (``{"subAgent": ...}``) are kept as their compact JSON text.
    """

    id: str
    path: Path
    created_at: int
    updated_at: int
    cwd: str
    model_provider: str
    model: str | None = None
    preview: str = ""
    name: str | None = None
    archived: bool = False
    source: str = "vscode"
    cli_version: str = ""
    forked_from_id: str | None = None
    git_info: dict[str, Any] | None = None


@dataclass(frozen=True)
class _FileStat:
    path: Path
    mtime_ns: int
    size: int
    archived: bool


@dataclass(frozen=True)
class _IndexedStat:
    thread_id: str
    mtime_ns: int | None
    size: int | None


def encode_cursor(record: ThreadRecord, sort_key: SortKey) -> str:
    """Opaque cursor positioned on ``record``; listing from it starts just past it."""
    value = record.created_at if sort_key == "created_at" else record.updated_at
    raw = f"{sort_key}:{value}:{record.id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_cursor(cursor: str, sort_key: SortKey) -> tuple[int, str]:
    """(sort value, thread id) of a cursor made for ``sort_key``; ValueError if invalid."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
        key, value, thread_id = text.split(":", 2)
        if key != sort_key or not thread_id:
            raise ValueError("sort key mismatch")
        return int(value), thread_id
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise ValueError(f"invalid cursor: {cursor!r}") from exc


class ThreadStore:
    """Rollout layout plus SQLite index under one home directory.

    Meant for a single thread (the asyncio loop): every call is a short synchronous
    SQLite statement or file rename.
    """

    def __init__(self, home: Path) -> None:
        # Absolute (not resolved: keep the caller's spelling) so stored paths are absolute.
        home = home.absolute()
        self.home = home
        self.sessions_dir = home / "sessions"
        self.archived_dir = home / "archived_sessions"
        self.db_path = home / "state.sqlite"
        private.ensure_home(home)
        self._db: sqlite3.Connection
        self._open_index()
        # Sections and attachments: tables of their own in the same file (store.sections).
        self.sections = SectionStore(self._db)

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
        existed = self.db_path.exists()
        try:
            db = _connect(self.db_path)
            healthy = existed and _is_healthy(db)
        except sqlite3.DatabaseError:
            logger.warning("thread index %s is corrupt; rebuilding it", self.db_path)
            self._delete_index_files()
            db = _connect(self.db_path)
            healthy = False
        if not healthy:
            _reset_schema(db)
        self._db = db
        self._sync(force=not healthy)

    def _delete_index_files(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)

    # ------------------------------------------------------------------- layout

    def rollout_path_for(self, thread_id: str, created_at: datetime) -> Path:
        """Where a new thread's rollout goes: ``sessions/YYYY/MM/DD/rollout-...-<id>.jsonl``."""
        moment = _as_utc(created_at)
        name = f"rollout-{moment:%Y-%m-%dT%H-%M-%S}-{thread_id}.jsonl"
        return self.sessions_dir / f"{moment:%Y}" / f"{moment:%m}" / f"{moment:%d}" / name

    # ------------------------------------------------------------------ records

    def upsert(self, rec: ThreadRecord) -> None:
        """Insert or replace a thread's row (file stat kept only if the path is unchanged)."""
        self._db.execute(
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

    def get(self, thread_id: str) -> ThreadRecord | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM threads WHERE id = ?", (thread_id,)
        ).fetchone()
        return _row_to_record(row) if row is not None else None

    def touch(self, thread_id: str, updated_at: int, preview: str | None = None) -> None:
        """Record activity; ``preview`` (if given) replaces the stored preview."""
        if preview is None:
            self._update(thread_id, "updated_at = ?", (updated_at,))
        else:
            self._update(
                thread_id,
                "updated_at = ?, preview = ?, search_preview = ?",
                (updated_at, preview, preview.casefold()),
            )

    def set_name(self, thread_id: str, name: str | None) -> None:
        self._update(thread_id, "name = ?, search_name = ?", (name, _fold(name)))

    def set_git_info(self, thread_id: str, git_info: dict[str, Any] | None) -> None:
        self._update(thread_id, "git_info = ?", (_dump_json(git_info),))

    def _update(self, thread_id: str, assignments: str, params: tuple[Any, ...]) -> None:
        cursor = self._db.execute(
            f"UPDATE threads SET {assignments} WHERE id = ?", (*params, thread_id)
        )
        if cursor.rowcount == 0:
            raise KeyError(thread_id)

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
        section_id: str | None = ANY_SECTION,
    ) -> tuple[builtins.list[ThreadRecord], str | None]:
        """One page of threads and the cursor of the next page (None on the last page).

        ``archived`` None/False lists live threads, True archived ones. Empty or None
        ``model_providers`` / ``cwd`` / ``source_kinds`` mean no filter (mapping the
        protocol's default source kinds is the caller's business). ``search_term`` is a
        case-insensitive substring match on preview and name. ``excluded_ids`` are left out
        before the page is cut.
        """
        column = _SORT_COLUMNS.get(sort_key)
        if column is None:
            raise ValueError(f"invalid sort key: {sort_key!r}")
        if sort_direction not in ("asc", "desc"):
            raise ValueError(f"invalid sort direction: {sort_direction!r}")
        page_size = _page_size(limit)
        where, params = _filters(archived, model_providers, cwd, search_term, source_kinds)
        if excluded_ids:
            where.append(f"id NOT IN ({', '.join('?' * len(excluded_ids))})")
            params.extend(excluded_ids)
        if section_id != ANY_SECTION:
            clause, values = member_filter(section_id)
            where.append(clause)
            params.extend(values)
        if cursor is not None:
            value, after_id = decode_cursor(cursor, sort_key)
            op = "<" if sort_direction == "desc" else ">"
            where.append(f"({column}, id) {op} (?, ?)")
            params.extend((value, after_id))
        order = "DESC" if sort_direction == "desc" else "ASC"
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM threads WHERE {' AND '.join(where)} "
            f"ORDER BY {column} {order}, id {order} LIMIT ?",
            (*params, page_size + 1),
        ).fetchall()
        records = [_row_to_record(row) for row in rows[:page_size]]
        has_more = len(rows) > page_size
        return records, encode_cursor(records[-1], sort_key) if has_more else None

    def list_by_section_position(
        self,
        *,
        offset: int,
        limit: int | None,
        sort_direction: SortDirection,
        archived: bool | None = None,
        excluded_ids: Sequence[str] | None = None,
        section_id: str | None = ANY_SECTION,
        **filters: Any,
    ) -> tuple[builtins.list[ThreadRecord], bool]:
        """``thread/list`` with ``sortKey: section_position``: ``desc`` (the default, as
        for every key) is the order threads were placed in their section, then unsectioned
        threads most recent first; ``asc`` is the exact reverse. Paged by offset; returns the
        page and whether more follow."""
        page_size = _page_size(limit)
        where, params = _filters(
            archived,
            filters.get("model_providers"),
            filters.get("cwd"),
            filters.get("search_term"),
            filters.get("source_kinds"),
        )
        if excluded_ids:
            where.append(f"id NOT IN ({', '.join('?' * len(excluded_ids))})")
            params.extend(excluded_ids)
        if section_id != ANY_SECTION:
            clause, values = member_filter(section_id)
            where.append(clause)
            params.extend(values)
        a, d = ("ASC", "DESC") if sort_direction == "desc" else ("DESC", "ASC")
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM threads WHERE {' AND '.join(where)} "
            f"ORDER BY {POSITION_SQL} IS NULL {a}, {POSITION_SQL} {a}, updated_at {d}, id {d} "
            "LIMIT ? OFFSET ?",
            (*params, page_size + 1, offset),
        ).fetchall()
        return [_row_to_record(row) for row in rows[:page_size]], len(rows) > page_size

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
        self._db.execute("DELETE FROM threads WHERE id = ?", (thread_id,))
        self.sections.forget_thread(thread_id)

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
        self._db.execute(
            "UPDATE threads SET path = ?, archived = ? WHERE id = ?",
            (str(target), int(archived), rec.id),
        )
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
        files = self._scan_files()
        by_path = {str(f.path): f for f in files}
        indexed = self._indexed_stats()
        with self._transaction():
            for f in files:
                known = indexed.get(str(f.path))
                unchanged = known is not None and (known.mtime_ns, known.size) == (
                    f.mtime_ns,
                    f.size,
                )
                if force or not unchanged:
                    self._index_file(f, by_path)
            for path in indexed.keys() - by_path.keys():
                self._db.execute("DELETE FROM threads WHERE path = ?", (path,))

    def _index_file(self, f: _FileStat, by_path: dict[str, _FileStat]) -> None:
        rec = _record_from_file(f)
        if rec is None:
            self._db.execute("DELETE FROM threads WHERE path = ?", (str(f.path),))
            return
        previous = self.get(rec.id)
        if previous is not None:
            if previous.path != rec.path and _wins(by_path.get(str(previous.path)), f):
                logger.warning(
                    "thread %s has two rollouts; keeping %s over %s",
                    rec.id,
                    previous.path,
                    f.path,
                )
                return
            rec = _merge(previous, rec)
        self.upsert(rec)
        self._db.execute(
            "UPDATE threads SET file_mtime_ns = ?, file_size = ? WHERE id = ?",
            (f.mtime_ns, f.size, rec.id),
        )

    def _scan_files(self) -> builtins.list[_FileStat]:
        found = [
            *_walk_rollouts(self.sessions_dir, archived=False),
            *_walk_rollouts(self.archived_dir, archived=True),
        ]
        found.sort(key=lambda f: str(f.path))
        return found

    def _indexed_stats(self) -> dict[str, _IndexedStat]:
        rows = self._db.execute("SELECT path, id, file_mtime_ns, file_size FROM threads")
        return {path: _IndexedStat(tid, mtime, size) for path, tid, mtime, size in rows}

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")


# --------------------------------------------------------------------- sqlite


def _connect(path: Path) -> sqlite3.Connection:
    # Created 0600 before SQLite opens it: SQLite gives the -wal and -shm files the mode of
    # the database file (and would create the database itself 0644).
    private.create_file(path)
    # Autocommit mode: single statements commit on their own; multi-statement work uses
    # explicit BEGIN/COMMIT (see ThreadStore._transaction).
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
) -> tuple[builtins.list[str], builtins.list[Any]]:
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


def _page_size(limit: int | None) -> int:
    if limit is None or limit <= 0:
        return DEFAULT_PAGE_SIZE
    return min(limit, MAX_PAGE_SIZE)


def _fold(text: str | None) -> str:
    return text.casefold() if text else ""


def _dump_json(value: dict[str, Any] | None) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


# ---------------------------------------------------------------- file reading


def _walk_rollouts(root: Path, *, archived: bool) -> Iterator[_FileStat]:
    if not root.is_dir():
        return
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            if not (filename.startswith("rollout-") and filename.endswith(".jsonl")):
                continue
            path = Path(dirpath) / filename
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # removed while we were scanning
            yield _FileStat(path, st.st_mtime_ns, st.st_size, archived)


def _record_from_file(f: _FileStat) -> ThreadRecord | None:
    """A record from a rollout's metadata lines, or None (with a warning) if unusable."""
    try:
        data = f.path.read_bytes()
    except OSError as exc:
        logger.warning("cannot read rollout %s (%s); not indexed", f.path, exc)
        return None
    lines = [
        parsed
        for raw in data.split(b"\n")
        if any(marker in raw for marker in _META_MARKERS)
        and (parsed := decode_line(raw)) is not None
    ]
    try:
        meta = thread_meta(lines)
    except ValueError:
        logger.warning("rollout %s has no session_meta line; not indexed", f.path)
        return None
    thread_id = meta.get("id")
    if not isinstance(thread_id, str) or not thread_id:
        logger.warning("rollout %s has no thread id; not indexed", f.path)
        return None
    mtime = f.mtime_ns // 1_000_000_000
    created = _parse_timestamp(meta.get("timestamp"))
    return ThreadRecord(
        id=thread_id,
        path=f.path,
        created_at=created if created is not None else mtime,
        updated_at=mtime,
        cwd=_str(meta.get("cwd")) or "",
        model_provider=_str(meta.get("model_provider")) or "",
        model=_str(meta.get("model")),
        preview=meta["preview"],
        name=meta["name"],
        archived=f.archived,
        source=_source(meta.get("source")),
        cli_version=_str(meta.get("cli_version")) or "",
        forked_from_id=_str(meta.get("forked_from_id")),
        git_info=meta.get("git_info") if isinstance(meta.get("git_info"), dict) else None,
    )


def _merge(previous: ThreadRecord, from_file: ThreadRecord) -> ThreadRecord:
    """Re-read file data wins, but keep what only the index knows about."""
    return replace(
        from_file,
        updated_at=max(previous.updated_at, from_file.updated_at),
        preview=from_file.preview or previous.preview,
        name=from_file.name if from_file.name is not None else previous.name,
        git_info=previous.git_info if previous.git_info is not None else from_file.git_info,
    )


def _wins(incumbent: _FileStat | None, challenger: _FileStat) -> bool:
    """Whether an already-indexed file beats another rollout claiming the same id."""
    if incumbent is None:
        return False  # the indexed file is gone; the challenger takes over
    return (incumbent.mtime_ns, not incumbent.archived) >= (
        challenger.mtime_ns,
        not challenger.archived,
    )


def _parse_timestamp(value: Any) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return int(_as_utc(datetime.fromisoformat(value)).timestamp())
    except ValueError:
        return None


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _source(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if value is not None else "unknown"
