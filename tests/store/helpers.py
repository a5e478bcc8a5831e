"""Shared builders for store tests: rollout files written the way the server writes them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from appserver.store.index import ThreadStore
from appserver.store.record import ThreadRecord
from appserver.store.rollout import RolloutWriter, format_rfc3339

BASE_TIME = 1_790_000_000


@dataclass
class ThreadSpec:
    """What a test wants a persisted thread to look like."""

    thread_id: str
    created_at: int = BASE_TIME
    updated_at: int | None = None
    cwd: str = "/work/project"
    model_provider: str = "openai"
    user_text: str = "hello there"
    name: str | None = None
    source: str = "vscode"


def session_meta(spec: ThreadSpec) -> dict[str, Any]:
    created = datetime.fromtimestamp(spec.created_at, UTC)
    return {
        "id": spec.thread_id,
        "timestamp": format_rfc3339(created),
        "cwd": spec.cwd,
        "originator": "appserver_tests",
        "cli_version": "0.1.0",
        "source": spec.source,
        "model_provider": spec.model_provider,
        "model": "mock-model",
        "forked_from_id": None,
        "ephemeral": False,
        "git_info": None,
    }


def write_rollout(path: Path, spec: ThreadSpec) -> None:
    """One completed turn; the file's mtime is set to ``updated_at`` for determinism."""
    turn_id = f"turn-{spec.thread_id}"
    with RolloutWriter(path) as writer:
        writer.append("session_meta", session_meta(spec))
        writer.append("event_msg", {"type": "task_started", "turn_id": turn_id, "started_at": 1})
        writer.append("event_msg", {"type": "user_message", "message": spec.user_text})
        item = {"type": "userMessage", "id": "u1", "content": [{"type": "text"}]}
        writer.append("event_msg", {"type": "item_completed", "turn_id": turn_id, "item": item})
        if spec.name is not None:
            writer.append("event_msg", {"type": "thread_name_updated", "thread_name": spec.name})
        writer.append(
            "event_msg",
            {
                "type": "task_complete",
                "turn_id": turn_id,
                "last_agent_message": None,
                "completed_at": 2,
                "duration_ms": 1000,
            },
        )
    updated = spec.updated_at if spec.updated_at is not None else spec.created_at
    os.utime(path, ns=(updated * 1_000_000_000, updated * 1_000_000_000))


def record_for(store: ThreadStore, spec: ThreadSpec) -> ThreadRecord:
    """The record a rebuild from ``write_rollout``'s file would produce."""
    return ThreadRecord(
        id=spec.thread_id,
        path=store.rollout_path_for(spec.thread_id, datetime.fromtimestamp(spec.created_at, UTC)),
        created_at=spec.created_at,
        updated_at=spec.updated_at if spec.updated_at is not None else spec.created_at,
        cwd=spec.cwd,
        model_provider=spec.model_provider,
        model="mock-model",
        preview=spec.user_text,
        name=spec.name,
        source=spec.source,
        cli_version="0.1.0",
    )


def persist(store: ThreadStore, spec: ThreadSpec) -> ThreadRecord:
    """Write the rollout and index it, as the server does."""
    rec = record_for(store, spec)
    write_rollout(rec.path, spec)
    store.upsert(rec)
    return rec
