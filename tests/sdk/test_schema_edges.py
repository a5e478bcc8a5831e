"""Responses that only some configurations produce, checked against the official schema.

Each goes through the harness, so the wire recorder validates it like every other message;
the assertions say what the schema-valid answer is. Covers: the deprecated ``on-failure``
approval policy (accepted from config and params, but not in the schema's ``AskForApproval``)
reported as ``on-request`` by thread/start and config/read; raw reasoning text
(``item/reasoning/textDelta`` and the reasoning item's ``content``), which most models never
send.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.conftest import ENV, write_config
from tests.harness import open_client
from tests.support import mock_model as mm
from tests.support.mock_model import MockModelServer
from tests.support.wire_recorder import RECORDER


@pytest.mark.parametrize("source", ["config", "params"])
async def test_on_failure_is_reported_as_a_schema_value(source: str, home: Path) -> None:
    if source == "config":
        (home / "config.toml").write_text('approval_policy = "on-failure"\n', encoding="utf-8")
    params = {"approvalPolicy": "on-failure"} if source == "params" else {}
    before = len(RECORDER.mismatches)
    async with open_client("in_process", home) as c:
        started = await c.call("thread/start", {"cwd": str(home), **params})
        assert started["approvalPolicy"] == "on-request"
        config = (await c.call("config/read", {}))["config"]
        if source == "config":
            assert config["approval_policy"] == "on-request"
    assert RECORDER.mismatches[before:] == []


async def test_raw_reasoning_text(home: Path, model: MockModelServer) -> None:
    write_config(home, model.base_url)
    reasoning = mm.reasoning_events("Plan", content=["raw thinking"])
    raw = [
        {
            "type": "response.reasoning_text.delta",
            "item_id": "rs_1",
            "content_index": 0,
            "delta": piece,
        }
        for piece in ("raw ", "thinking")
    ]
    model.add(mm.sse_response([reasoning[0], *raw, *reasoning[1:]], mm.text_events("Done.")))
    before = len(RECORDER.mismatches)
    async with open_client("in_process", home, env=ENV) as c:
        tid = (await c.call("thread/start", {"cwd": str(home)}))["thread"]["id"]
        await c.call("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "x"}]})
        turn = (await c.notification("turn/completed"))["params"]["turn"]
        assert turn["status"] == "completed"
        deltas = [m["params"] for m in c.seen if m.get("method") == "item/reasoning/textDelta"]
        assert "".join(d["delta"] for d in deltas) == "raw thinking"
        assert {d["contentIndex"] for d in deltas} == {0}
        done = [
            m["params"]["item"]
            for m in c.seen
            if m.get("method") == "item/completed" and m["params"]["item"]["type"] == "reasoning"
        ]
        assert done[0]["content"] == ["raw thinking"] and done[0]["summary"] == ["Plan"]
    assert RECORDER.mismatches[before:] == []
