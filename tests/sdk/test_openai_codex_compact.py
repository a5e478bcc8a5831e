"""``thread/compact/start`` through the official Python SDK (``openai-codex``) over stdio.

``CodexClient.thread_compact`` is the call ``Thread.compact()`` makes. The compaction turn is
started by the server, not by the SDK, so the SDK routes none of its turn notifications to a
handle; its end is read from the thread's status changes, which the SDK queues globally. The
next turn, started through the SDK, must reach the model with the compacted history, and
``thread/read`` must parse (the SDK's models include the ``contextCompaction`` item).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

openai_codex = pytest.importorskip(
    "openai_codex", reason="openai-codex 0.163.0 is not installed (.ci/run installs it --no-deps)"
)

from openai_codex.client import CodexClient  # noqa: E402
from openai_codex.generated.v2_all import (  # noqa: E402
    ContextCompactionThreadItem,
    ThreadCompactStartResponse,
    TurnStatus,
)

from appserver.engine.compaction import SUMMARY_PREFIX  # noqa: E402
from tests.engine.conftest import ENV, write_config  # noqa: E402
from tests.sdk.conftest import bounded, sdk_config  # noqa: E402
from tests.support import mock_model as mm  # noqa: E402
from tests.support.mock_model import MockModelServer  # noqa: E402

SUMMARY = "The user said hello; nothing else is pending."


def wait_idle(client: CodexClient, times: int) -> None:
    """Block until the ``times``-th ``thread/status/changed`` to idle (each SDK call is bounded
    by ``bounded``; the reader fails every wait if the server goes away)."""
    seen = 0
    while seen < times:
        note = client.next_notification()
        if note.method == "thread/status/changed":
            status = note.payload.model_dump(by_alias=True, mode="json")["status"]
            seen += status["type"] == "idle"


def test_thread_compact_through_the_sdk(home: Path, model: MockModelServer) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("Hello!"), mm.sse_text(SUMMARY), mm.sse_text("Still with you."))

    def flow() -> tuple[Any, Any, Any]:
        with CodexClient(sdk_config(home, env=ENV)) as client:
            client.initialize()
            thread_id = client.thread_start({}).thread.id
            client.wait_for_turn_completed(client.turn_start(thread_id, "Say hello.").turn.id)
            compacted = client.thread_compact(thread_id)
            wait_idle(client, 2)  # the first turn's end, then the compaction's
            turn = client.turn_start(thread_id, "Still there?").turn
            done = client.wait_for_turn_completed(turn.id)
            return compacted, done, client.thread_read(thread_id, include_turns=True)

    compacted, done, read = bounded(flow, home)
    assert isinstance(compacted, ThreadCompactStartResponse)
    assert done.turn.status == TurnStatus.completed
    turns = read.thread.turns
    assert [t.status for t in turns] == [TurnStatus.completed] * 3
    assert [type(i.root) for i in turns[1].items] == [ContextCompactionThreadItem]
    sent = [
        i["content"][0]["text"] for i in model.model_requests()[-1].body["input"] if "role" in i
    ]
    assert sent == ["Say hello.", f"{SUMMARY_PREFIX}\n\n{SUMMARY}", "Still there?"]
