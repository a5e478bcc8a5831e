"""Collaboration modes end to end, over all three transports: a ``turn/start`` in Plan mode
puts the Plan-mode developer message into the model request (once, however many turns stay
in Plan mode), the tools are the same as in Default mode, a turn without a mode or in
Default mode from the start sends no mode message, going back to Default says so, and a
client's own mode instructions are used as given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, start_thread
from tests.harness import WireClient, open_client
from tests.support import mock_model as mm

PLAN_OPENING = "<collaboration_mode># Plan Mode (Conversational)"


def _mode(mode: str, instructions: str | None = None) -> dict[str, Any]:
    settings = {"model": "mock-model", "reasoning_effort": None}
    return {"mode": mode, "settings": {**settings, "developer_instructions": instructions}}


async def _turn(c: WireClient, tid: str, text: str, mode: dict[str, Any] | None) -> None:
    params: dict[str, Any] = {"threadId": tid, "input": [{"type": "text", "text": text}]}
    if mode is not None:
        params["collaborationMode"] = mode
    await c.call("turn/start", params)
    assert (await completed_turn(c))["status"] == "completed"


def _mode_texts(body: dict[str, Any]) -> list[str]:
    """The collaboration-mode developer messages of one model request, in order."""
    texts = []
    for item in body["input"]:
        if item.get("role") != "developer":
            continue
        text = "".join(c.get("text", "") for c in item.get("content", []))
        if text.startswith("<collaboration_mode>"):
            texts.append(text)
    return texts


async def test_plan_mode_adds_its_instructions(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(*(mm.sse_text(f"reply {i}") for i in range(5)))
    async with open_client(transport, home, env=ENV, capabilities={"experimentalApi": True}) as c:
        tid = await start_thread(c, home)
        await _turn(c, tid, "no mode", None)
        await _turn(c, tid, "default", _mode("default"))
        await _turn(c, tid, "plan this", _mode("plan"))
        await _turn(c, tid, "still planning", _mode("plan"))
        await _turn(c, tid, "go", _mode("default"))
    bodies = [r.body for r in model.model_requests()]
    assert [_mode_texts(b) for b in bodies[:2]] == [[], []]
    plan = _mode_texts(bodies[2])
    assert len(plan) == 1 and plan[0].startswith(PLAN_OPENING)
    assert plan[0].endswith("</collaboration_mode>")
    # The mode message comes right before the user's message of the turn that switched.
    inputs = bodies[2]["input"]
    assert inputs[-2]["role"] == "developer" and inputs[-1]["role"] == "user"
    assert _mode_texts(bodies[3]) == plan  # still in the history, not repeated
    last = _mode_texts(bodies[4])
    assert last[0] == plan[0] and last[1].startswith("<collaboration_mode># Default Mode")
    assert {tuple(t["name"] for t in b["tools"]) for b in bodies} == {
        tuple(t["name"] for t in bodies[0]["tools"])
    }


async def test_client_mode_instructions_and_resume(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(*(mm.sse_text(f"reply {i}") for i in range(3)))
    async with open_client(transport, home, env=ENV, capabilities={"experimentalApi": True}) as c:
        tid = await start_thread(c, home)
        await _turn(c, tid, "one", _mode("default", "# Collaboration Mode: Default\nAct."))
    async with open_client(transport, home, env=ENV, capabilities={"experimentalApi": True}) as c:
        await c.call("thread/resume", {"threadId": tid})
        # The resumed history already carries these instructions: nothing is added.
        await _turn(c, tid, "two", _mode("default", "# Collaboration Mode: Default\nAct."))
        bad = await c.request(
            "turn/start",
            {
                "threadId": tid,
                "input": [{"type": "text", "text": "x"}],
                "collaborationMode": {"mode": "pair", "settings": {"model": "m"}},
            },
        )
        assert bad["error"]["code"] == -32600
    bodies = [r.body for r in model.model_requests()]
    expected = ["<collaboration_mode># Collaboration Mode: Default\nAct.</collaboration_mode>"]
    assert _mode_texts(bodies[0]) == expected
    assert _mode_texts(bodies[1]) == expected
