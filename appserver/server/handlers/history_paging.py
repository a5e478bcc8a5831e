"""Per-thread views a client pages through after ``thread/resume`` or ``thread/read``:
``thread/items/list``, ``thread/readState/update``, ``thread/goal/get`` and
``thread/backgroundTerminals/list``.

Owns these handlers, their registration and the item cursors. ``thread/items/list`` pages a
thread's completed items across its turns (or one turn's), oldest first unless
``sortDirection`` is ``desc``; a cursor names an item position (turn id and ordinal in that
turn) and whether that item is included again: ``nextCursor`` continues after the page's
last item, ``backwardsCursor`` (and ``thread/resume``'s ``itemsBackwardsCursor``) includes
its anchor, as the schema says. Read states live in the store (``store.read_states``). There
is no goal feature yet, so no thread has a goal; commands never outlive their turn here
(``engine.tools.shell`` kills every process group when its command returns), so there are no
background terminals to list. It must never run a turn.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from appserver.core.processor import RequestContext
from appserver.engine.manager import ThreadManager
from appserver.protocol.client_params import (
    ItemAnchor,
    ThreadItemsListParams,
    ThreadPageParams,
    ThreadReadStateUpdateParams,
)
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.protocol.thread_params import ThreadIdParams
from appserver.server.engine_errors import mapped

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import (
        ThreadBackgroundTerminalsListResponse,
        ThreadReadStateUpdateResponse,
    )
    from appserver.protocol.wire_types import (
        ThreadGoalGetResponse,
        ThreadItemEntry,
        ThreadItemsListResponse,
    )

ITEMS_PAGE_DEFAULT = 50
ITEMS_PAGE_MAX = 200

Position = tuple[str, int]  # (turn id, ordinal of the item within its turn)


def item_cursor(position: Position, *, inclusive: bool) -> str:
    """Opaque: an item position, and whether a page from it includes that item again."""
    turn_id, ordinal = position
    raw = f"{'at' if inclusive else 'after'}:{ordinal}:{turn_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_item_cursor(cursor: str) -> tuple[Position, bool]:
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
        kind, ordinal, turn_id = text.split(":", 2)
        position = (turn_id, int(ordinal))
    except (ValueError, UnicodeError, binascii.Error):
        raise invalid_request(f"invalid cursor: {cursor[:200]}") from None
    if kind not in ("at", "after") or not turn_id:
        raise invalid_request(f"invalid cursor: {cursor[:200]}")
    return position, kind == "at"


def positioned(entries: list[ThreadItemEntry]) -> list[tuple[Position, ThreadItemEntry]]:
    """Each entry with its position (its turn, and how many items of that turn came first)."""
    seen: dict[str, int] = {}
    out: list[tuple[Position, ThreadItemEntry]] = []
    for entry in entries:
        turn_id = entry["turnId"]
        ordinal = seen.get(turn_id, 0)
        seen[turn_id] = ordinal + 1
        out.append(((turn_id, ordinal), entry))
    return out


def newest_item_cursor(entries: list[ThreadItemEntry]) -> str | None:
    """``itemsBackwardsCursor``: the newest item, included by a ``desc`` page from it."""
    items = positioned(entries)
    return item_cursor(items[-1][0], inclusive=True) if items else None


class HistoryPagingHandlers:
    def __init__(self, manager: ThreadManager) -> None:
        self.manager = manager

    def register(self, r: MethodRegistry) -> None:
        c, i = Scope.CONCURRENT, Scope.INLINE
        r.register(
            "thread/items/list",
            ThreadItemsListParams,
            mapped(self.items_list),
            result="ThreadItemsListResponse",
            scope=c,
        )
        r.register(
            "thread/readState/update",
            ThreadReadStateUpdateParams,
            mapped(self.read_state_update),
            result="ThreadReadStateUpdateResponse",
            experimental=True,
            scope=Scope.THREAD,
        )
        r.register(
            "thread/goal/get",
            ThreadIdParams,
            mapped(self.goal_get),
            result="ThreadGoalGetResponse",
            scope=i,
        )
        r.register(
            "thread/backgroundTerminals/list",
            ThreadPageParams,
            mapped(self.background_terminals),
            result="ThreadBackgroundTerminalsListResponse",
            experimental=True,
            scope=i,
        )

    def _require_thread(self, thread_id: str) -> None:
        if not self.manager.exists(thread_id):
            raise invalid_request(f"thread not found: {thread_id}")

    async def items_list(
        self, ctx: RequestContext, p: ThreadItemsListParams
    ) -> ThreadItemsListResponse:
        self.manager.check_pageable(p.thread_id, "thread/items/list")
        entries = self.manager.items_by_id(p.thread_id)
        if entries is None:
            raise invalid_request(f"thread not found: {p.thread_id}")
        items = positioned(entries)
        if p.turn_id:
            items = [(pos, e) for pos, e in items if pos[0] == p.turn_id]
            if not items:
                turns = self.manager.turns_by_id(p.thread_id) or []
                if p.turn_id not in {t["id"] for t in turns}:
                    raise invalid_request(f"turn not found: {p.turn_id}")
        if p.sort_direction == "desc":
            items.reverse()
        start = 0
        if isinstance(p.cursor, ItemAnchor):
            # An exclusive anchor inside the requested turn: the items after it (asc) or
            # before it (desc).
            if not p.turn_id:
                raise invalid_request("an item anchor cursor requires a non-empty turnId")
            ids = [e["item"].get("id") for _, e in items]
            if p.cursor.item_id not in ids:
                raise invalid_request(f"item not found in turn {p.turn_id}: {p.cursor.item_id}")
            start = ids.index(p.cursor.item_id) + 1
        elif p.cursor is not None:
            position, inclusive = _decode_item_cursor(p.cursor)
            positions = [pos for pos, _ in items]
            if position not in positions:
                raise invalid_request(f"invalid cursor: {p.cursor[:200]}")
            start = positions.index(position) + (0 if inclusive else 1)
        limit = min(p.limit or ITEMS_PAGE_DEFAULT, ITEMS_PAGE_MAX)
        page = items[start : start + limit]
        more = start + len(page) < len(items)
        return {
            "data": [entry for _, entry in page],
            "nextCursor": item_cursor(page[-1][0], inclusive=False) if more else None,
            "backwardsCursor": item_cursor(page[0][0], inclusive=True) if page else None,
        }

    async def read_state_update(
        self, ctx: RequestContext, p: ThreadReadStateUpdateParams
    ) -> ThreadReadStateUpdateResponse:
        state = self.manager.update_read_state(p.thread_id, p.operation.type, p.expected_revision)
        await ctx.broadcast(
            "thread/readState/changed", {"threadId": p.thread_id, "readState": state}
        )
        return {"readState": state}

    async def goal_get(self, ctx: RequestContext, p: ThreadIdParams) -> ThreadGoalGetResponse:
        self._require_thread(p.thread_id)
        return {"goal": None}

    async def background_terminals(
        self, ctx: RequestContext, p: ThreadPageParams
    ) -> ThreadBackgroundTerminalsListResponse:
        self._require_thread(p.thread_id)
        return {"data": [], "nextCursor": None}
