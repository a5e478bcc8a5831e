"""The wire views of the engine's objects: ``Thread`` (of a loaded thread or of a stored
record), ``ThreadStatus`` and ``Turn`` (of the running turn, or of a stored turn as an
``itemsView`` asks).

Owns each of these shapes, and the ``item/started`` / ``item/completed`` params, in one
place: the engine's notifications (``turn/started``,
``turn/completed``, ``thread/status/changed``) and the server's replies both build them
here. The views are typed with ``protocol.wire_types`` (imported for ``mypy`` only), so the
shapes are checked against the official schema; values the engine keeps as loose dicts or
strings (a git info, a sandbox policy, a session source) are cast once, here. Pure functions:
they never do I/O nor send anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from appserver.engine.thread_state import ActiveTurn, LoadedThread, now_ms, now_s

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import TurnIds
    from appserver.protocol.wire_types import (
        GitInfo,
        ItemCompletedNotification,
        ItemStartedNotification,
        SessionSource,
        Thread,
        ThreadItem,
        ThreadStatus,
        ThreadStatusChangedNotification,
        ThreadTokenUsage,
        Turn,
        TurnError,
        TurnItemsView,
        TurnStatus,
    )
    from appserver.store.record import ThreadRecord


def turn_ids(thread: LoadedThread, turn: ActiveTurn) -> TurnIds:
    """The ``threadId``/``turnId`` pair most turn notifications carry."""
    return {"threadId": thread.id, "turnId": turn.id}


def wire_item(item: dict[str, Any]) -> ThreadItem:
    """An item as the engine builds it (a plain dict, also what the rollout records), as the
    schema's ``ThreadItem`` a notification carries."""
    return cast("ThreadItem", item)


def item_started(
    thread: LoadedThread, turn: ActiveTurn, item: dict[str, Any]
) -> ItemStartedNotification:
    """``item/started``'s params: the item as it begins, stamped now."""
    return {"item": wire_item(item), **turn_ids(thread, turn), "startedAtMs": now_ms()}


def item_completed(
    thread: LoadedThread, turn: ActiveTurn, item: dict[str, Any]
) -> ItemCompletedNotification:
    """``item/completed``'s params: the finished item, stamped now."""
    return {
        "item": wire_item(item),
        "threadId": thread.id,
        "turnId": turn.id,
        "completedAtMs": now_ms(),
    }


def wire_error(error: dict[str, Any] | None) -> TurnError:
    """A turn's error as the engine keeps it (``turn_runner.turn_error``), as the schema's
    (a failed turn always has one)."""
    return cast("TurnError", error)


def wire_usage(usage: dict[str, Any]) -> ThreadTokenUsage:
    """Token usage as the runner sums it, as the schema's ``ThreadTokenUsage``."""
    return cast("ThreadTokenUsage", usage)


def status_changed(thread_id: str, thread: LoadedThread | None) -> ThreadStatusChangedNotification:
    """``thread/status/changed``'s params: the thread's status now (``notLoaded`` once it
    is unloaded, ``thread`` None)."""
    return {"threadId": thread_id, "status": thread_status(thread)}


def thread_status(thread: LoadedThread | None) -> ThreadStatus:
    """Active while a turn runs (with what it waits on), else idle or in error; a thread
    that is not loaded (None) is ``notLoaded``."""
    if thread is None:
        return {"type": "notLoaded"}
    if thread.active_turn is not None:
        return {"type": "active", "activeFlags": cast("Any", list(thread.waiting_flags))}
    if thread.system_error:
        return {"type": "systemError"}
    return {"type": "idle"}


def thread_view(thread: LoadedThread, turns: list[Turn] | None = None) -> Thread:
    """A loaded thread: its live status, and the given turns (none unless asked for)."""
    s = thread.settings
    updated = thread.updated_at or thread.created_at
    return _thread(
        thread.id,
        forked_from_id=thread.forked_from_id,
        preview=thread.preview,
        ephemeral=thread.ephemeral,
        provider=s.provider,
        model=s.model,
        created_at=thread.created_at,
        updated_at=updated,
        status=thread_status(thread),
        path=str(thread.path) if thread.path is not None else None,
        cwd=s.cwd,
        cli_version=thread.cli_version,
        source=thread.source,
        git_info=thread.git_info,
        name=thread.name,
        turns=turns or [],
    )


def record_view(rec: ThreadRecord, status: ThreadStatus, turns: list[Turn] | None = None) -> Thread:
    """A stored thread (its index row), with the status it has now."""
    return _thread(
        rec.id,
        forked_from_id=rec.forked_from_id,
        preview=rec.preview,
        ephemeral=False,
        provider=rec.model_provider,
        model=rec.model,
        created_at=rec.created_at,
        updated_at=rec.updated_at,
        status=status,
        path=str(rec.path),
        cwd=rec.cwd,
        cli_version=rec.cli_version,
        source=rec.source,
        git_info=rec.git_info,
        name=rec.name,
        turns=turns or [],
    )


def _thread(
    thread_id: str,
    *,
    forked_from_id: str | None,
    preview: str,
    ephemeral: bool,
    provider: str,
    model: str | None,
    created_at: int,
    updated_at: int,
    status: ThreadStatus,
    path: str | None,
    cwd: str,
    cli_version: str,
    source: str,
    git_info: dict[str, Any] | None,
    name: str | None,
    turns: list[Turn],
) -> Thread:
    return {
        "id": thread_id,
        "sessionId": thread_id,
        "forkedFromId": forked_from_id,
        "preview": preview,
        "ephemeral": ephemeral,
        "modelProvider": provider,
        "model": model,
        "createdAt": created_at,
        "updatedAt": updated_at,
        # Recency is the last activity here; history pages by turns and items.
        "recencyAt": updated_at,
        "historyMode": "paginated",
        "status": status,
        "path": path,
        "cwd": cwd,
        "cliVersion": cli_version,
        "source": cast("SessionSource", source),
        "threadSource": None,
        "agentNickname": None,
        "agentRole": None,
        "gitInfo": cast("GitInfo | None", git_info),
        "name": name,
        "turns": turns,
    }


def turn_view(turn: ActiveTurn, status: str = "inProgress", error: Any = None) -> Turn:
    """The running turn (``turn/started``, ``turn/start``'s reply) or the turn it became
    (``turn/completed``). As the reference sends it: a running turn's items are not loaded;
    a finished one's are summarised by its final agent message (transcript-simple,
    transcript-approval)."""
    done = status != "inProgress"
    last = turn.last_agent_item
    return {
        "id": turn.id,
        "items": [cast("ThreadItem", last)] if done and last is not None else [],
        "itemsView": "summary" if done else "notLoaded",
        "status": cast("TurnStatus", status),  # the runner's ending: completed/interrupted/failed
        "error": cast("TurnError | None", error),
        "startedAt": turn.started_at,
        "completedAt": now_s() if done else None,
        "durationMs": now_ms() - turn.started_ms if done else None,
    }


def stored_turn_view(turn: Turn, view: TurnItemsView) -> Turn:
    """A stored turn (full items) as ``itemsView`` asks: all items, the final agent message
    only (as ``turn/completed`` carries it), or none."""
    if view == "full":
        return turn
    items: list[ThreadItem] = []
    if view == "summary":
        messages = [i for i in turn["items"] if i.get("type") == "agentMessage"]
        items = messages[-1:]
    return {**turn, "items": items, "itemsView": view}
