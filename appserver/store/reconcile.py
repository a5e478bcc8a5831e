"""Reconciling the SQLite index with the rollout files (the source of truth).

Owns reading a rollout's metadata lines into a ``ThreadRecord``, deciding which of two
rollouts claiming one thread id wins, what survives a re-read (index-only data), and the
sync pass run on every open (changed files re-read, vanished files' rows dropped).
Must never: write to a rollout or parse its body beyond the metadata lines, or run on the
listing path (it scans the disk).
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson

from appserver.store import sqlite_index as sql
from appserver.store.history import thread_meta
from appserver.store.layout import FileStat, Layout, as_utc
from appserver.store.record import ThreadRecord
from appserver.store.rollout import decode_line

logger = logging.getLogger("appserver.store")

# Only lines carrying these markers can affect indexed metadata; everything else in a
# (possibly large) rollout is skipped without being decoded.
_META_MARKERS = (b'"session_meta"', b'"thread_name_updated"', b'"user_message"')


def sync(db: sqlite3.Connection, layout: Layout, *, force: bool) -> None:
    """Bring the index in line with the files; ``force`` re-reads unchanged files too."""
    files = layout.scan_files()
    by_path = {str(f.path): f for f in files}
    indexed = sql.indexed_stats(db)
    with sql.transaction(db):
        for f in files:
            known = indexed.get(str(f.path))
            unchanged = known is not None and (known.mtime_ns, known.size) == (
                f.mtime_ns,
                f.size,
            )
            if force or not unchanged:
                _index_file(db, f, by_path)
        for path in indexed.keys() - by_path.keys():
            sql.delete_path(db, path)


def _index_file(db: sqlite3.Connection, f: FileStat, by_path: dict[str, FileStat]) -> None:
    rec = _record_from_file(f)
    if rec is None:
        sql.delete_path(db, str(f.path))
        return
    previous = sql.get(db, rec.id)
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
    sql.upsert(db, rec)
    sql.set_file_stat(db, rec.id, f.mtime_ns, f.size)


def _record_from_file(f: FileStat) -> ThreadRecord | None:
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


def _wins(incumbent: FileStat | None, challenger: FileStat) -> bool:
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
        return int(as_utc(datetime.fromisoformat(value)).timestamp())
    except ValueError:
        return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _source(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode() if value is not None else "unknown"
