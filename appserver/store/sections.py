"""Thread sections and thread attachments, kept in the thread index's SQLite file.

Owns three tables beside ``threads`` in ``state.sqlite``: ``thread_sections`` (id, name,
appearance, creation order), ``thread_section_members`` (which section a thread is in, its
position there, when it entered) and ``thread_attachments`` (typed payloads on a thread, one
per ``(thread, type, identity key)``), with ``SectionStore`` over them; and the SQL fragments
the thread listing uses to filter by section and order by section position
(``member_filter``, ``POSITION_SQL``).

Unlike the ``threads`` rows, these are not derived from rollout files: they are the only copy.
So the tables are created if missing and never dropped when the thread index is rebuilt for an
outdated schema; only a corrupt database file (which the index deletes and rebuilds) loses
them, and the index logs that. Ids are made by the caller (the server's UUIDv7s). Must never:
read rollout files, decide protocol errors (a missing row is ``KeyError``, a bad position
``ValueError``), or hold a transaction open across calls.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import orjson

if TYPE_CHECKING:
    from appserver.protocol.wire_types import ThreadAttachment, ThreadSection

SCHEMA = """
CREATE TABLE IF NOT EXISTS thread_sections (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    appearance TEXT,
    created_seq INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS thread_section_members (
    thread_id TEXT PRIMARY KEY,
    section_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    entered_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS section_members_by_position
    ON thread_section_members (section_id, position);
CREATE TABLE IF NOT EXISTS thread_attachments (
    id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    attachment_type TEXT NOT NULL,
    identity_key TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    UNIQUE (thread_id, attachment_type, identity_key)
);
CREATE INDEX IF NOT EXISTS thread_attachments_by_identity
    ON thread_attachments (attachment_type, identity_key);
"""

# A listing's ``section_id`` that lists every thread (None lists those in no section).
ANY_SECTION = "*any*"

# The section position of ``threads.id`` (NULL when the thread is in no section), for ORDER BY.
POSITION_SQL = "(SELECT m.position FROM thread_section_members m WHERE m.thread_id = threads.id)"

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def member_filter(section_id: str | None) -> tuple[str, list[Any]]:
    """A WHERE clause on ``threads``: in that section, or (None) in none."""
    if section_id is None:
        return "id NOT IN (SELECT thread_id FROM thread_section_members)", []
    return (
        "id IN (SELECT thread_id FROM thread_section_members WHERE section_id = ?)",
        [section_id],
    )


def encode_offset(kind: str, offset: int) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{offset}".encode()).decode("ascii")


def decode_offset(kind: str, cursor: str) -> int:
    """The offset in a cursor made by ``encode_offset(kind, …)``; ValueError if invalid."""
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
        got, _, value = text.partition(":")
        offset = int(value)
        if got != kind or offset < 0:
            raise ValueError(kind)
        return offset
    except (ValueError, UnicodeError, binascii.Error) as exc:
        raise ValueError(f"invalid cursor: {cursor!r}") from exc


def page_size(limit: int | None) -> int:
    return DEFAULT_PAGE_SIZE if not limit or limit <= 0 else min(limit, MAX_PAGE_SIZE)


@dataclass(frozen=True)
class Section:
    id: str
    name: str
    appearance: dict[str, Any] | None

    def wire(self) -> ThreadSection:
        return {"id": self.id, "name": self.name, "appearance": cast(Any, self.appearance)}


@dataclass(frozen=True)
class Membership:
    section: Section
    entered_at: int


@dataclass(frozen=True)
class Attachment:
    id: str
    thread_id: str
    attachment_type: str
    identity_key: str
    payload: Any
    created_at: int

    def wire(self) -> ThreadAttachment:
        return {
            "id": self.id,
            "attachmentType": self.attachment_type,
            "identityKey": self.identity_key,
            "payload": self.payload,
            "createdAt": self.created_at,
        }


_SECTION_COLUMNS = "id, name, appearance"
_ATTACHMENT_COLUMNS = "id, thread_id, attachment_type, identity_key, payload, created_at"


def _section(row: tuple[Any, ...]) -> Section:
    appearance = orjson.loads(row[2]) if row[2] is not None else None
    return Section(row[0], row[1], appearance)


def _attachment(row: tuple[Any, ...]) -> Attachment:
    return Attachment(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5])


def _dump(value: Any) -> str | None:
    return orjson.dumps(value).decode() if value is not None else None


class SectionStore:
    """Sections, memberships and attachments on the thread index's connection."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # -- sections --------------------------------------------------------------------------
    def create(self, section_id: str, name: str, appearance: dict[str, Any] | None) -> Section:
        self._db.execute(
            "INSERT INTO thread_sections (id, name, appearance, created_seq) VALUES "
            "(?, ?, ?, (SELECT COALESCE(MAX(created_seq), 0) + 1 FROM thread_sections))",
            (section_id, name, _dump(appearance)),
        )
        return Section(section_id, name, appearance)

    def get(self, section_id: str) -> Section | None:
        row = self._db.execute(
            f"SELECT {_SECTION_COLUMNS} FROM thread_sections WHERE id = ?", (section_id,)
        ).fetchone()
        return _section(row) if row is not None else None

    def sections(self, offset: int, limit: int) -> tuple[builtins.list[Section], bool]:
        """A page of sections in creation order, and whether more follow."""
        rows = self._db.execute(
            f"SELECT {_SECTION_COLUMNS} FROM thread_sections ORDER BY created_seq LIMIT ? OFFSET ?",
            (limit + 1, offset),
        ).fetchall()
        return [_section(r) for r in rows[:limit]], len(rows) > limit

    def update(
        self, section_id: str, name: str, appearance: dict[str, Any] | None, *, keep: bool
    ) -> Section:
        """Rename (and, unless ``keep``, set the appearance; None clears it)."""
        if keep:
            cursor = self._db.execute(
                "UPDATE thread_sections SET name = ? WHERE id = ?", (name, section_id)
            )
        else:
            cursor = self._db.execute(
                "UPDATE thread_sections SET name = ?, appearance = ? WHERE id = ?",
                (name, _dump(appearance), section_id),
            )
        if cursor.rowcount == 0:
            raise KeyError(section_id)
        section = self.get(section_id)
        assert section is not None
        return section

    def delete(self, section_id: str) -> builtins.list[str]:
        """Remove the section; returns the threads that were in it (now in none)."""
        with self._transaction():
            if self.get(section_id) is None:
                raise KeyError(section_id)
            members = self.members(section_id)
            self._db.execute(
                "DELETE FROM thread_section_members WHERE section_id = ?", (section_id,)
            )
            self._db.execute("DELETE FROM thread_sections WHERE id = ?", (section_id,))
        return members

    # -- membership ------------------------------------------------------------------------
    def members(self, section_id: str) -> builtins.list[str]:
        rows = self._db.execute(
            "SELECT thread_id FROM thread_section_members WHERE section_id = ? ORDER BY position",
            (section_id,),
        )
        return [r[0] for r in rows]

    def membership(self, thread_id: str) -> Membership | None:
        row = self._db.execute(
            "SELECT s.id, s.name, s.appearance, m.entered_at FROM thread_section_members m "
            "JOIN thread_sections s ON s.id = m.section_id WHERE m.thread_id = ?",
            (thread_id,),
        ).fetchone()
        return Membership(_section(row[:3]), row[3]) if row is not None else None

    def move(self, thread_id: str, section_id: str | None, before: str | None) -> bool:
        """Put the thread in ``section_id`` (None: in no section), before ``before`` or at
        the end. True when its section changed (not only its position). ``KeyError`` for an
        unknown section, ``ValueError`` when ``before`` is not in that section."""
        with self._transaction():
            current = self._db.execute(
                "SELECT section_id, entered_at FROM thread_section_members WHERE thread_id = ?",
                (thread_id,),
            ).fetchone()
            if section_id is None:
                if before is not None:
                    raise ValueError("beforeThreadId needs a sectionId")
                self._db.execute(
                    "DELETE FROM thread_section_members WHERE thread_id = ?", (thread_id,)
                )
                return current is not None
            if self.get(section_id) is None:
                raise KeyError(section_id)
            order = [t for t in self.members(section_id) if t != thread_id]
            if before is not None:
                if before == thread_id or before not in order:
                    raise ValueError(f"thread {before} is not in section {section_id}")
                order.insert(order.index(before), thread_id)
            else:
                order.append(thread_id)
            same = current is not None and current[0] == section_id
            entered = current[1] if same else int(time.time())
            self._db.execute("DELETE FROM thread_section_members WHERE thread_id = ?", (thread_id,))
            self._db.execute(
                "INSERT INTO thread_section_members (thread_id, section_id, position, entered_at)"
                " VALUES (?, ?, 0, ?)",
                (thread_id, section_id, entered),
            )
            self._db.executemany(
                "UPDATE thread_section_members SET position = ? WHERE thread_id = ?",
                [(i, t) for i, t in enumerate(order)],
            )
            return not same

    def forget_thread(self, thread_id: str) -> None:
        """A deleted thread leaves its section and loses its attachments."""
        with self._transaction():
            self._db.execute("DELETE FROM thread_section_members WHERE thread_id = ?", (thread_id,))
            self._db.execute("DELETE FROM thread_attachments WHERE thread_id = ?", (thread_id,))

    # -- attachments -----------------------------------------------------------------------
    def attachment(self, thread_id: str, kind: str, key: str) -> Attachment | None:
        row = self._db.execute(
            f"SELECT {_ATTACHMENT_COLUMNS} FROM thread_attachments "
            "WHERE thread_id = ? AND attachment_type = ? AND identity_key = ?",
            (thread_id, kind, key),
        ).fetchone()
        return _attachment(row) if row is not None else None

    def add_attachment(
        self, attachment_id: str, thread_id: str, kind: str, key: str, payload: Any
    ) -> tuple[Attachment, bool]:
        """The attachment with that identity on the thread, created if missing (True)."""
        with self._transaction():
            existing = self.attachment(thread_id, kind, key)
            if existing is not None:
                return existing, False
            created = Attachment(attachment_id, thread_id, kind, key, payload, int(time.time()))
            self._db.execute(
                "INSERT INTO thread_attachments (id, thread_id, attachment_type, identity_key, "
                "payload, created_at, seq) VALUES (?, ?, ?, ?, ?, ?, "
                "(SELECT COALESCE(MAX(seq), 0) + 1 FROM thread_attachments))",
                (
                    attachment_id,
                    thread_id,
                    kind,
                    key,
                    orjson.dumps(payload).decode(),
                    created.created_at,
                ),
            )
            return created, True

    def attachments(
        self, thread_id: str, offset: int, limit: int
    ) -> tuple[builtins.list[Attachment], bool]:
        rows = self._db.execute(
            f"SELECT {_ATTACHMENT_COLUMNS} FROM thread_attachments WHERE thread_id = ? "
            "ORDER BY seq LIMIT ? OFFSET ?",
            (thread_id, limit + 1, offset),
        ).fetchall()
        return [_attachment(r) for r in rows[:limit]], len(rows) > limit

    def remove_attachment(self, thread_id: str, kind: str, key: str) -> Attachment | None:
        """Remove it; the removed attachment, or None when there was none."""
        with self._transaction():
            found = self.attachment(thread_id, kind, key)
            if found is not None:
                self._db.execute("DELETE FROM thread_attachments WHERE id = ?", (found.id,))
        return found

    def owners(
        self, kind: str, key: str, archived: bool | None, offset: int, limit: int
    ) -> tuple[builtins.list[tuple[str, bool]], bool]:
        """(thread id, archived) of the indexed threads holding that attachment identity."""
        where = "a.attachment_type = ? AND a.identity_key = ?"
        params: list[Any] = [kind, key]
        # LEFT JOIN: a thread not yet in the index (no user message yet) is live.
        if archived is not None:
            where += " AND COALESCE(t.archived, 0) = ?"
            params.append(int(archived))
        rows = self._db.execute(
            "SELECT a.thread_id, COALESCE(t.archived, 0) FROM thread_attachments a "
            f"LEFT JOIN threads t ON t.id = a.thread_id WHERE {where} "
            "ORDER BY a.seq LIMIT ? OFFSET ?",
            (*params, limit + 1, offset),
        ).fetchall()
        return [(r[0], bool(r[1])) for r in rows[:limit]], len(rows) > limit
