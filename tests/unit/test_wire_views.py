"""The wire views and the engine's errors on the wire (pure functions, no I/O).

Covers: a loaded thread and its stored record show as the same ``Thread`` shape (one key set,
the status and turns as given); a running turn's view has no items and no end, a finished
one carries its last agent message and its end; a stored turn shown as ``summary`` keeps its
last agent message only, as ``notLoaded`` none; ``EngineError`` becomes -32600 with its
message, ``NotSteerable`` adds the schema's ``activeTurnNotSteerable`` data, and a handler
wrapped by ``mapped`` raises them as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appserver.engine import views
from appserver.engine.errors import EngineError, NotSteerable
from appserver.engine.thread_state import ActiveTurn, LoadedThread, ThreadSettings
from appserver.protocol.errors import INVALID_REQUEST, RpcError
from appserver.server.engine_errors import mapped, to_rpc
from appserver.store.record import ThreadRecord

SETTINGS = ThreadSettings(
    model="m", provider="p", cwd="/w", approval_policy="never", sandbox_policy={}
)


def test_loaded_and_stored_threads_have_one_shape(tmp_path: Path) -> None:
    loaded = LoadedThread(id="t1", created_at=10, settings=SETTINGS, path=tmp_path / "r.jsonl")
    rec = ThreadRecord(
        id="t1", path=tmp_path / "r.jsonl", created_at=10, updated_at=12, cwd="/w",
        model_provider="p", model="m",
    )  # fmt: skip
    live = views.thread_view(loaded)
    stored = views.record_view(rec, views.thread_status(None))
    assert set(live) == set(stored)
    assert live["status"] == {"type": "idle"}
    assert stored["status"] == {"type": "notLoaded"}
    assert (live["updatedAt"], stored["updatedAt"]) == (10, 12)
    assert live["turns"] == stored["turns"] == []


def test_turn_view_running_and_finished() -> None:
    turn = ActiveTurn(id="u1", started_at=5, started_ms=5000)
    running = views.turn_view(turn)
    assert running["items"] == [] and running["itemsView"] == "notLoaded"
    assert running["completedAt"] is None and running["durationMs"] is None
    turn.last_agent_item = {"type": "agentMessage", "id": "a", "text": "hi"}
    done = views.turn_view(turn, "completed")
    assert done["items"] == [turn.last_agent_item] and done["itemsView"] == "summary"
    assert done["completedAt"] is not None


def test_stored_turn_views() -> None:
    items: list[Any] = [
        {"type": "userMessage", "id": "1", "content": []},
        {"type": "agentMessage", "id": "2", "text": "a"},
        {"type": "agentMessage", "id": "3", "text": "b"},
    ]
    turn: Any = {"id": "u", "items": items, "status": "completed"}
    assert views.stored_turn_view(turn, "full") is turn
    assert views.stored_turn_view(turn, "summary")["items"] == [items[2]]
    assert views.stored_turn_view(turn, "notLoaded")["items"] == []


def test_engine_errors_on_the_wire() -> None:
    plain = to_rpc(EngineError("no active turn to steer"))
    assert (plain.code, plain.message, plain.data) == (
        INVALID_REQUEST,
        "no active turn to steer",
        None,
    )
    refused = to_rpc(NotSteerable("cannot steer a compact turn", "compact"))
    assert refused.code == INVALID_REQUEST
    assert refused.data == {
        "message": "cannot steer a compact turn",
        "codexErrorInfo": {"activeTurnNotSteerable": {"turnKind": "compact"}},
        "additionalDetails": None,
    }


async def test_mapped_handler_raises_rpc_errors() -> None:
    async def handler(ctx: Any, params: Any) -> dict[str, Any]:
        raise EngineError(f"thread not found: {params}")

    with pytest.raises(RpcError) as caught:
        await mapped(handler)(None, "x")
    assert caught.value.message == "thread not found: x"
