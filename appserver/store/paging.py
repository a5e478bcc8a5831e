"""Paging vocabulary of the thread listing: sort keys, page sizes and opaque cursors.

Owns the cursor format (base64 of ``sort_key:value:id``) and the page size bounds.
Must never: touch SQLite or files (the query itself is the index's business).
"""

from __future__ import annotations

import base64
import binascii
from typing import Literal

from appserver.store.record import ThreadRecord

SortKey = Literal["created_at", "updated_at"]
SortDirection = Literal["asc", "desc"]

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100


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


def page_size(limit: int | None) -> int:
    if limit is None or limit <= 0:
        return DEFAULT_PAGE_SIZE
    return min(limit, MAX_PAGE_SIZE)
