"""Interpretation of parsed rollout lines: turns, model history, usage and thread metadata.

Everything here is a pure function of ``list[dict]`` lines as returned by
``rollout.read_rollout``. Must never do I/O, mutate its input, or raise on unexpected
line shapes (unknown or malformed lines are ignored: rollouts outlive code versions).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

PREVIEW_MAX_CHARS = 200

_END_STATUS = {
    "task_complete": "completed",
    "turn_aborted": "interrupted",
    "turn_failed": "failed",
}


def event_payloads(lines: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Payloads of the ``event_msg`` lines, in order."""
    for line in lines:
        payload = line.get("payload")
        if line.get("type") == "event_msg" and isinstance(payload, dict):
            yield payload


def rebuild_turns(
    lines: list[dict[str, Any]], *, live_turn_id: str | None = None
) -> list[dict[str, Any]]:
    """Rebuild v2 ``Turn`` dicts from task_started / item_completed / end events.

    A turn that never got an end line is ``interrupted``: whoever was running it is gone.
    The exception is ``live_turn_id``, the turn the calling server is running right now,
    which stays ``inProgress``.
    """
    turns: dict[str, dict[str, Any]] = {}
    for event in event_payloads(lines):
        turn_id = event.get("turn_id")
        if not isinstance(turn_id, str):
            continue
        kind = event.get("type")
        if kind == "task_started":
            _turn(turns, turn_id)["startedAt"] = _opt_int(event.get("started_at"))
        elif kind == "item_completed":
            _add_item(_turn(turns, turn_id), event.get("item"))
        elif isinstance(kind, str) and kind in _END_STATUS:
            _finish(_turn(turns, turn_id), _END_STATUS[kind], event)
    for turn in turns.values():
        if turn["status"] == "inProgress" and turn["id"] != live_turn_id:
            turn["status"] = "interrupted"
    return list(turns.values())


def waiting_turn(lines: list[dict[str, Any]]) -> tuple[str, int] | None:
    """The last turn, (id, started_at), when the process that ran it stopped while it waited
    on an approval: it has no end line and its last approval request was never answered."""
    last: str | None = None
    started: dict[str, int] = {}
    ended: set[str] = set()
    waiting: dict[str, bool] = {}
    for event in event_payloads(lines):
        turn_id = event.get("turn_id")
        if not isinstance(turn_id, str):
            continue
        kind = event.get("type")
        if kind == "task_started":
            last = turn_id
            started[turn_id] = _opt_int(event.get("started_at")) or 0
        elif kind in _END_STATUS:
            ended.add(turn_id)
        elif kind == "approval_requested":
            waiting[turn_id] = True
        elif kind == "approval_resolved":
            waiting[turn_id] = False
    if last is None or last in ended or not waiting.get(last):
        return None
    return last, started.get(last, 0)


def item_entries(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every completed item of the thread in the order it was recorded, as the protocol's
    ``ThreadItemEntry``: ``{turnId, item, startedAtMs, completedAtMs}``. The start time is
    not recorded (null); the completion time is, since item_completed lines carry
    ``completed_at_ms`` (null for lines written before they did)."""
    entries: list[dict[str, Any]] = []
    for event in event_payloads(lines):
        turn_id, item = event.get("turn_id"), event.get("item")
        if event.get("type") != "item_completed" or not isinstance(turn_id, str):
            continue
        if isinstance(item, dict):
            entries.append(
                {
                    "turnId": turn_id,
                    "item": copy.deepcopy(item),
                    "startedAtMs": None,
                    "completedAtMs": _opt_int(event.get("completed_at_ms")),
                }
            )
    return entries


def _turn(turns: dict[str, dict[str, Any]], turn_id: str) -> dict[str, Any]:
    # Items or an end line without a task_started (older or foreign writers) still
    # produce a turn rather than being dropped.
    turn = turns.get(turn_id)
    if turn is None:
        turn = {
            "id": turn_id,
            "items": [],
            "itemsView": "full",
            "status": "inProgress",
            "error": None,
            "startedAt": None,
            "completedAt": None,
            "durationMs": None,
        }
        turns[turn_id] = turn
    return turn


def _add_item(turn: dict[str, Any], item: Any) -> None:
    if isinstance(item, dict):
        turn["items"].append(copy.deepcopy(item))


def _finish(turn: dict[str, Any], status: str, event: dict[str, Any]) -> None:
    turn["status"] = status
    turn["completedAt"] = _opt_int(event.get("completed_at"))
    turn["durationMs"] = _opt_int(event.get("duration_ms"))
    if turn["startedAt"] is None:
        turn["startedAt"] = _opt_int(event.get("started_at"))
    error = event.get("error")
    turn["error"] = copy.deepcopy(error) if status == "failed" and isinstance(error, dict) else None


def _opt_int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def rebuild_history(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The model conversation: ``response_item`` payloads in order.

    A ``compacted`` line carrying ``replacement_history`` replaces everything before it,
    as Codex does after a context compaction.
    """
    history: list[dict[str, Any]] = []
    for line in lines:
        payload = line.get("payload")
        if not isinstance(payload, dict):
            continue
        if line.get("type") == "response_item":
            history.append(copy.deepcopy(payload))
        elif line.get("type") == "compacted":
            replacement = payload.get("replacement_history")
            if isinstance(replacement, list):
                history = [copy.deepcopy(i) for i in replacement if isinstance(i, dict)]
    return history


# Token usage on the wire (``TokenUsageBreakdown``) and in a rollout's ``token_count`` event,
# which names its fields the way Codex writes them.
_USAGE_FIELDS = (
    ("totalTokens", "total_tokens"),
    ("inputTokens", "input_tokens"),
    ("cachedInputTokens", "cached_input_tokens"),
    ("outputTokens", "output_tokens"),
    ("reasoningOutputTokens", "reasoning_output_tokens"),
)


def token_count_info(
    total: dict[str, int], last: dict[str, int], context_window: int | None
) -> dict[str, Any]:
    """The ``info`` of a ``token_count`` event, as Codex writes it, from wire-shaped usage."""
    return {
        "total_token_usage": {rollout: total.get(wire, 0) for wire, rollout in _USAGE_FIELDS},
        "last_token_usage": {rollout: last.get(wire, 0) for wire, rollout in _USAGE_FIELDS},
        "model_context_window": context_window,
    }


def wire_usage(rollout_usage: dict[str, Any]) -> dict[str, int]:
    """A ``token_count`` usage as Codex writes it, wire-shaped (``TokenUsageBreakdown``)."""
    return {
        wire: value if isinstance(value := rollout_usage.get(rollout), int) else 0
        for wire, rollout in _USAGE_FIELDS
    }


def last_token_usage(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``info`` of the last ``token_count`` event that had one, else None."""
    found: dict[str, Any] | None = None
    for event in event_payloads(lines):
        info = event.get("info")
        if event.get("type") == "token_count" and isinstance(info, dict):
            found = info
    return copy.deepcopy(found) if found is not None else None


def last_token_total(lines: list[dict[str, Any]]) -> dict[str, int] | None:
    """The thread's running token total (wire-shaped) from its last ``token_count``: Codex's
    ``total_token_usage``, or the wire-shaped ``total`` that earlier versions wrote."""
    info = last_token_usage(lines)
    if info is None:
        return None
    codex = info.get("total_token_usage")
    if isinstance(codex, dict):
        return {
            wire: value
            for wire, rollout in _USAGE_FIELDS
            if isinstance(value := codex.get(rollout), int)
        }
    total = info.get("total")
    if isinstance(total, dict):
        return {k: v for k, v in total.items() if isinstance(k, str) and isinstance(v, int)}
    return None


def thread_meta(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``session_meta`` payload with ``name`` and ``preview`` brought up to date.

    ``name`` is the last ``thread_name_updated`` (else the session_meta name, else None);
    ``preview`` the first ``user_message`` truncated to 200 characters (else "").
    Raises ValueError when there is no session_meta line.
    """
    meta = _session_meta(lines)
    if meta is None:
        raise ValueError("rollout has no session_meta line")
    meta = copy.deepcopy(meta)
    name = meta.get("name") if isinstance(meta.get("name"), str) else None
    preview: str | None = None
    for event in event_payloads(lines):
        kind = event.get("type")
        if kind == "thread_name_updated":
            new_name = event.get("thread_name")
            name = new_name if isinstance(new_name, str) else None
        elif kind == "user_message" and preview is None:
            message = event.get("message")
            if isinstance(message, str):
                preview = truncate_preview(message)
    meta["name"] = name
    meta["preview"] = preview or ""
    return meta


def truncate_preview(text: str) -> str:
    return text[:PREVIEW_MAX_CHARS]


def _session_meta(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    for line in lines:
        payload = line.get("payload")
        if line.get("type") == "session_meta" and isinstance(payload, dict):
            return payload
    return None
