"""The replies of the thread and turn methods, built from engine objects and engine views.

Owns the reply shapes (``thread/start``, ``thread/fork`` and ``thread/resume``'s settings
reply, ``turn/start``'s, the ``thread/turns/list`` page), the ``thread/search`` snippet, and
the opaque turn cursors. The ``Thread``, ``ThreadStatus`` and ``Turn`` inside
them come from ``engine.views`` (one place each). Typed with ``protocol.wire_types`` and
``protocol.wire_extra`` (imported for ``mypy`` only). Pure functions: it must never do I/O,
send anything, or decide what the engine does.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, cast

from appserver.engine import views
from appserver.engine.thread_state import ActiveTurn, LoadedThread
from appserver.engine.tools import sandbox
from appserver.protocol.errors import invalid_request

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import ThreadResumeResult, ThreadStartResult
    from appserver.protocol.wire_types import (
        AskForApproval,
        SandboxPolicy,
        ThreadTurnsListResponse,
        Turn,
        TurnItemsView,
        TurnStartResponse,
    )


def _wire_approval_policy(policy: str) -> AskForApproval:
    """The policy as a response may carry it. The deprecated ``on-failure`` (still accepted
    from config and params) is not in the schema's ``AskForApproval``, so clients parsing the
    response (the official SDK) would reject it: it is reported as ``on-request``, the schema
    value nearest to it."""
    return cast("AskForApproval", "on-request" if policy == "on-failure" else policy)


def thread_settings_reply(thread: LoadedThread, turns: list[Turn]) -> ThreadStartResult:
    """``thread/start`` and ``thread/fork``'s reply (``thread/resume``'s adds cursors): the
    thread and the settings it runs with."""
    s = thread.settings
    return {
        "thread": views.thread_view(thread, turns),
        "model": s.model,
        "modelProvider": s.provider,
        "serviceTier": None,
        "cwd": s.cwd,
        "instructionSources": [],
        "approvalPolicy": _wire_approval_policy(s.approval_policy),
        "approvalsReviewer": "user",
        "sandbox": cast("SandboxPolicy", s.sandbox_policy),
        "reasoningEffort": s.effort,
        # Ours, not Codex's: how the sandbox is enforced here. "bubblewrap" confines
        # commands; "approval" means bubblewrap is unavailable, so restricted commands are
        # asked about instead of run unconfined; "none" is danger-full-access.
        "sandboxEnforcement": sandbox.enforcement(s.sandbox_policy),
    }


def thread_resume_reply(
    thread: LoadedThread, turns: list[Turn], shown: list[Turn], items_cursor: str | None
) -> ThreadResumeResult:
    """``thread/resume``'s reply: the settings reply with ``shown`` turns, and the cursors
    that page the turns and the items back from the newest, each including its anchor (the
    thread's ``historyMode`` is ``paginated``)."""
    # The same fields as the settings reply, then the cursors.
    reply = cast("ThreadResumeResult", thread_settings_reply(thread, shown))
    reply["turnsBackwardsCursor"] = turn_cursor(turns[-1]["id"], inclusive=True) if turns else None
    reply["itemsBackwardsCursor"] = items_cursor
    reply["initialTurnsPage"] = None
    return reply


def turn_reply(turn: ActiveTurn) -> TurnStartResponse:
    """``turn/start``'s reply: the turn just begun (no items yet)."""
    return {"turn": views.turn_view(turn)}


# -- pages ------------------------------------------------------------------------------------
def turn_cursor(turn_id: str, *, inclusive: bool) -> str:
    """Opaque: the turn a page starts from, and whether that turn is included again."""
    raw = f"{'at' if inclusive else 'after'}:{turn_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def decode_turn_cursor(cursor: str) -> tuple[str, bool]:
    try:
        kind, turn_id = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().split(":", 1)
    except (ValueError, UnicodeError, binascii.Error):
        raise invalid_request(f"invalid cursor: {cursor}") from None
    if kind not in ("at", "after") or not turn_id:
        raise invalid_request(f"invalid cursor: {cursor}")
    return turn_id, kind == "at"


TURNS_PAGE_DEFAULT = 25
TURNS_PAGE_MAX = 100


def turns_page(
    turns: list[Turn],
    *,
    cursor: str | None,
    limit: int | None,
    descending: bool,
    view: TurnItemsView,
) -> ThreadTurnsListResponse:
    """A page of turns (``ThreadTurnsListResponse``), newest first when ``descending``. A
    cursor names the turn a page continues after; ``backwardsCursor`` names the page's first
    turn, which the opposite direction then includes again (as the schema says)."""
    if descending:
        turns = list(reversed(turns))
    start = 0
    if cursor is not None:
        after, inclusive = decode_turn_cursor(cursor)
        ids = [t["id"] for t in turns]
        if after not in ids:
            raise invalid_request(f"invalid cursor: {cursor}")
        start = ids.index(after) + (0 if inclusive else 1)
    page = turns[start : start + min(limit or TURNS_PAGE_DEFAULT, TURNS_PAGE_MAX)]
    more = start + len(page) < len(turns)
    return {
        "data": [views.stored_turn_view(t, view) for t in page],
        "nextCursor": turn_cursor(page[-1]["id"], inclusive=False) if more else None,
        "backwardsCursor": turn_cursor(page[0]["id"], inclusive=True) if page else None,
    }


SNIPPET_CONTEXT = 60  # characters kept on each side of a search match


def search_snippet(term: str, *texts: str | None) -> str:
    """The text around the first match of ``term`` (case-insensitive) in the first of
    ``texts`` that holds it; an empty term or no match gives the start of the first text."""
    pattern = re.compile(re.escape(term), re.IGNORECASE) if term else None
    for text in texts:
        if not text or pattern is None:
            continue
        found = pattern.search(text)
        if found is not None:
            start = max(0, found.start() - SNIPPET_CONTEXT)
            end = min(len(text), found.end() + SNIPPET_CONTEXT)
            head = "…" if start > 0 else ""
            tail = "…" if end < len(text) else ""
            return head + text[start:end] + tail
    first = next((t for t in texts if t), "")
    return first[: 2 * SNIPPET_CONTEXT]
