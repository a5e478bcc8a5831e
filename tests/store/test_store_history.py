"""rebuild_turns / rebuild_history / last_token_usage / thread_meta."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appserver.store.history import (
    last_token_total,
    last_token_usage,
    rebuild_history,
    rebuild_turns,
    thread_meta,
    token_count_info,
)
from appserver.store.rollout import RolloutWriter, read_rollout


def ev(payload: dict[str, Any]) -> dict[str, Any]:
    return {"timestamp": "2026-01-01T00:00:00.000Z", "type": "event_msg", "payload": payload}


def started(turn: str, at: int = 100) -> dict[str, Any]:
    return ev({"type": "task_started", "turn_id": turn, "started_at": at})


def item(turn: str, item_id: str, kind: str = "agentMessage") -> dict[str, Any]:
    return ev({"type": "item_completed", "turn_id": turn, "item": {"type": kind, "id": item_id}})


def complete(turn: str) -> dict[str, Any]:
    return ev(
        {
            "type": "task_complete",
            "turn_id": turn,
            "last_agent_message": "done",
            "completed_at": 105,
            "duration_ms": 5000,
        }
    )


def meta_line(**extra: Any) -> dict[str, Any]:
    payload = {"id": "t1", "cwd": "/w", "model_provider": "openai", **extra}
    return {"timestamp": "2026-01-01T00:00:00.000Z", "type": "session_meta", "payload": payload}


def test_completed_turn() -> None:
    lines = [
        meta_line(),
        started("a"),
        item("a", "u1", "userMessage"),
        item("a", "m1"),
        complete("a"),
    ]
    (turn,) = rebuild_turns(lines)
    assert turn == {
        "id": "a",
        "items": [{"type": "userMessage", "id": "u1"}, {"type": "agentMessage", "id": "m1"}],
        "itemsView": "full",
        "status": "completed",
        "error": None,
        "startedAt": 100,
        "completedAt": 105,
        "durationMs": 5000,
    }


def test_aborted_turn_is_interrupted() -> None:
    aborted = ev(
        {
            "type": "turn_aborted",
            "turn_id": "a",
            "reason": "interrupted",
            "completed_at": 101,
            "duration_ms": 900,
        }
    )
    (turn,) = rebuild_turns([started("a"), item("a", "m1"), aborted])
    assert turn["status"] == "interrupted"
    assert turn["error"] is None
    assert (turn["completedAt"], turn["durationMs"]) == (101, 900)
    assert len(turn["items"]) == 1


def test_failed_turn_carries_error() -> None:
    error = {"message": "boom", "codexErrorInfo": "serverOverloaded"}
    failed = ev(
        {
            "type": "turn_failed",
            "turn_id": "a",
            "error": error,
            "completed_at": 102,
            "duration_ms": 2000,
        }
    )
    (turn,) = rebuild_turns([started("a"), failed])
    assert turn["status"] == "failed"
    assert turn["error"] == error


def test_crashed_turn_is_interrupted_unless_live() -> None:
    lines = [started("a"), item("a", "m1"), complete("a"), started("b"), item("b", "m2")]
    turns = rebuild_turns(lines)
    assert [t["status"] for t in turns] == ["completed", "interrupted"]
    assert turns[1]["completedAt"] is None
    assert turns[1]["items"] == [{"type": "agentMessage", "id": "m2"}]
    live = rebuild_turns(lines, live_turn_id="b")
    assert live[1]["status"] == "inProgress"


def test_turns_keep_order_and_ignore_junk() -> None:
    lines: list[dict[str, Any]] = [
        started("a"),
        complete("a"),
        {"type": "event_msg", "payload": "not a dict"},
        ev({"type": "task_started"}),  # no turn id
        ev({"type": "item_completed", "turn_id": "b", "item": "junk"}),
        {"type": "turn_context", "payload": {"turn_id": "b"}},
        started("b"),
        complete("b"),
        started("c"),
        complete("c"),
    ]
    turns = rebuild_turns(lines)
    assert [t["id"] for t in turns] == ["a", "b", "c"]
    assert turns[1]["items"] == []


def test_rebuild_does_not_alias_input() -> None:
    lines = [started("a"), item("a", "m1"), complete("a")]
    turn = rebuild_turns(lines)[0]
    turn["items"][0]["id"] = "changed"
    assert lines[1]["payload"]["item"]["id"] == "m1"


def test_history_is_response_items_in_order_and_honours_compaction() -> None:
    def resp(text: str) -> dict[str, Any]:
        return {"type": "response_item", "payload": {"type": "message", "text": text}}

    lines = [meta_line(), resp("1"), started("a"), resp("2"), complete("a")]
    assert [i["text"] for i in rebuild_history(lines)] == ["1", "2"]
    compacted = {"type": "compacted", "payload": {"replacement_history": [{"text": "summary"}]}}
    assert [i["text"] for i in rebuild_history([*lines, compacted, resp("3")])] == [
        "summary",
        "3",
    ]


def test_last_token_usage() -> None:
    assert last_token_usage([started("a")]) is None
    first = {"total_token_usage": {"total_tokens": 1}, "model_context_window": 10}
    second = {"total_token_usage": {"total_tokens": 5}, "model_context_window": 10}
    lines = [
        ev({"type": "token_count", "info": first}),
        ev({"type": "token_count", "info": second}),
        ev({"type": "token_count", "info": None}),
    ]
    assert last_token_usage(lines) == second


def test_last_token_total_reads_codex_and_earlier_shapes() -> None:
    codex = token_count_info({"totalTokens": 19, "inputTokens": 12}, {"totalTokens": 19}, None)
    assert codex["total_token_usage"]["total_tokens"] == 19
    assert codex["last_token_usage"]["input_tokens"] == 0
    lines = [ev({"type": "token_count", "info": codex})]
    assert last_token_total(lines) == {
        "totalTokens": 19,
        "inputTokens": 12,
        "cachedInputTokens": 0,
        "outputTokens": 0,
        "reasoningOutputTokens": 0,
    }
    earlier = {"total": {"totalTokens": 7}, "last": {"totalTokens": 7}}
    assert last_token_total([ev({"type": "token_count", "info": earlier})]) == {"totalTokens": 7}
    assert last_token_total([started("a")]) is None


def test_thread_meta_name_and_preview() -> None:
    long_text = "x" * 500
    lines = [
        meta_line(name="initial"),
        ev({"type": "user_message", "message": long_text}),
        ev({"type": "user_message", "message": "second"}),
        ev({"type": "thread_name_updated", "thread_name": "renamed"}),
    ]
    meta = thread_meta(lines)
    assert meta["id"] == "t1"
    assert meta["name"] == "renamed"
    assert meta["preview"] == "x" * 200
    bare = thread_meta([meta_line()])
    assert (bare["name"], bare["preview"]) == (None, "")


def test_thread_meta_requires_session_meta() -> None:
    with pytest.raises(ValueError):
        thread_meta([started("a")])


def test_written_rollout_rebuilds(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    with RolloutWriter(path) as writer:
        for line in [meta_line(), started("a"), item("a", "m1"), complete("a"), started("b")]:
            writer.append(line["type"], line["payload"])
    turns = rebuild_turns(read_rollout(path).lines)
    assert [(t["id"], t["status"]) for t in turns] == [("a", "completed"), ("b", "interrupted")]
