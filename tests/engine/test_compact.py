"""``thread/compact/start`` end to end over all three transports, against the real HTTP mock
model.

Covers: the reply and the compaction turn's notifications in order (no agent message streamed);
the compaction request (history plus the instruction) and the next turn's request (the
compacted history instead of the old one); a restart, then resume (the compacted history and
the turns, compaction turn included, come back from the rollout); a model failure after a
retry (the turn fails, the history is unchanged); an interrupt (the history is unchanged);
steering or starting a turn during a compaction (``activeTurnNotSteerable``); an ephemeral
thread; unknown threads. Last, the replacement history itself (a pure function): newest user
messages kept within the bound, earlier summaries and images dropped.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import orjson

from appserver.engine.compaction import (
    COMPACTION_INSTRUCTION,
    SUMMARY_PREFIX,
    replacement_history,
)
from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, run_turn, start_thread
from tests.harness import WireClient, open_client
from tests.support import mock_model as mm
from tests.support.mock_model import MockModelServer

SUMMARY = "Asked for a haiku about autumn; wrote one. Next: a second stanza."
NOT_STEERABLE = {"activeTurnNotSteerable": {"turnKind": "compact"}}


def texts(body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of each message a model request carried."""
    return [
        (i["role"], i["content"][0]["text"]) for i in body["input"] if i.get("type") == "message"
    ]


def compacted(*user_texts: str) -> list[tuple[str, str]]:
    """The history a compaction leaves: these user messages, then the summary."""
    return [*(("user", t) for t in user_texts), ("user", f"{SUMMARY_PREFIX}\n\n{SUMMARY}")]


async def first_turn(c: WireClient, home: Path) -> str:
    tid = await start_thread(c, home)
    await run_turn(c, tid, "Write a haiku about autumn.")
    await c.notification("turn/started")  # so the next one waited for is the compaction's
    assert (await completed_turn(c))["status"] == "completed"
    return tid


async def compact(c: WireClient, tid: str) -> dict[str, Any]:
    """Start a compaction; returns its ``turn/started`` params."""
    assert await c.call("thread/compact/start", {"threadId": tid}) == {}
    return (await c.notification("turn/started"))["params"]


def turn_messages(c: WireClient, turn_id: str) -> list[dict[str, Any]]:
    def of_turn(m: dict[str, Any]) -> bool:
        p = m.get("params") or {}
        return p.get("turnId") == turn_id or (p.get("turn") or {}).get("id") == turn_id

    return [m for m in c.seen if "method" in m and of_turn(m)]


async def test_compaction_turn_and_the_next_turn_uses_its_history(
    transport: str, home: Path, model: MockModelServer
) -> None:
    write_config(home, model.base_url)
    model.add(
        mm.sse_text("Crisp leaves falling"),
        mm.sse_text(SUMMARY, usage=mm.sse_usage(120, 20)),
        mm.sse_text("Second stanza."),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await first_turn(c, home)
        reply = await c.request("thread/compact/start", {"threadId": tid})
        assert reply["result"] == {}
        turn = await completed_turn(c)
        assert turn["status"] == "completed" and turn["error"] is None
        events = [
            (m["method"], (m["params"].get("item") or {}).get("type"))
            for m in turn_messages(c, turn["id"])
        ]
        assert [e for e in events if e[0] != "thread/tokenUsage/updated"] == [
            ("turn/started", None),
            ("item/started", "contextCompaction"),
            ("item/completed", "contextCompaction"),
            ("thread/compacted", None),
            ("turn/completed", None),
        ]
        order = [m.get("id") if "result" in m else m.get("method") for m in c.seen]
        started = [i for i, m in enumerate(c.seen) if m.get("method") == "turn/started"][-1]
        assert order.index(reply["id"]) < started
        item = next(
            m["params"]["item"] for m in turn_messages(c, turn["id"]) if "item" in m["params"]
        )
        assert set(item) == {"type", "id"}
        assert ("thread/tokenUsage/updated", None) in events
        [note] = [m for m in turn_messages(c, turn["id"]) if m["method"] == "thread/compacted"]
        assert note["params"] == {"threadId": tid, "turnId": turn["id"]}

        await run_turn(c, tid, "Now a second stanza.")
        assert (await completed_turn(c))["status"] == "completed"
        read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
        kinds = [[i["type"] for i in t["items"]] for t in read["thread"]["turns"]]
        assert kinds == [
            ["userMessage", "agentMessage"],
            ["contextCompaction"],
            ["userMessage", "agentMessage"],
        ]
        assert read["thread"]["turns"][1]["items"][0]["id"] == item["id"]
    first, compaction, after = (r.body for r in model.model_requests())
    # The compaction call: the whole history, then the instruction.
    assert texts(compaction) == [
        *texts(first),
        ("assistant", "Crisp leaves falling"),
        ("user", COMPACTION_INSTRUCTION),
    ]
    # The next turn: the compacted history (no assistant text any more), then the new input.
    assert texts(after) == [
        *compacted("Write a haiku about autumn."),
        ("user", "Now a second stanza."),
    ]


async def test_compacted_history_survives_a_restart(
    transport: str, home: Path, model: MockModelServer
) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("Crisp leaves falling"), mm.sse_text(SUMMARY), mm.sse_text("Again."))
    async with open_client(transport, home, env=ENV) as c:
        tid = await first_turn(c, home)
        await compact(c, tid)
        assert (await completed_turn(c))["status"] == "completed"
    async with open_client(transport, home, env=ENV) as c:
        resumed = await c.call("thread/resume", {"threadId": tid})
        turns = resumed["thread"]["turns"]
        assert [t["status"] for t in turns] == ["completed", "completed"]
        assert [[i["type"] for i in t["items"]] for t in turns] == [
            ["userMessage", "agentMessage"],
            ["contextCompaction"],
        ]
        await run_turn(c, tid, "Continue.")
        assert (await completed_turn(c))["status"] == "completed"
        read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
        assert len(read["thread"]["turns"]) == 3
        path = Path(read["thread"]["path"])
    after = model.model_requests()[-1].body
    assert texts(after) == [*compacted("Write a haiku about autumn."), ("user", "Continue.")]
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    [line] = [ln for ln in lines if ln["type"] == "compacted"]
    assert line["payload"]["message"] == SUMMARY
    assert [m["content"][0]["text"] for m in line["payload"]["replacement_history"]] == [
        t for _, t in compacted("Write a haiku about autumn.")
    ]


async def test_model_failure_fails_the_turn_and_keeps_the_history(
    transport: str, home: Path, model: MockModelServer
) -> None:
    write_config(home, model.base_url, request_retries=1)
    model.add(
        mm.sse_text("Crisp leaves falling"),
        mm.http_error(500),
        mm.http_error(400),
        mm.sse_text("Still here."),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await first_turn(c, home)
        await compact(c, tid)
        turn = await completed_turn(c)
        assert turn["status"] == "failed"
        assert turn["error"]["message"] and turn["error"]["codexErrorInfo"] == "badRequest"
        methods = [m["method"] for m in turn_messages(c, turn["id"])]
        assert "thread/compacted" not in methods
        assert methods.index("item/completed") < methods.index("turn/completed")
        errors = [
            m["params"]["willRetry"] for m in turn_messages(c, turn["id"]) if m["method"] == "error"
        ]
        assert errors == [True, False]
        await run_turn(c, tid, "Go on.")
        assert (await completed_turn(c))["status"] == "completed"
    first, *_, after = (r.body for r in model.model_requests())
    assert texts(after) == [
        *texts(first),
        ("assistant", "Crisp leaves falling"),
        ("user", "Go on."),
    ]


async def test_interrupted_compaction_keeps_the_history(
    transport: str, home: Path, model: MockModelServer
) -> None:
    write_config(home, model.base_url)
    held = mm.sse_text(SUMMARY)
    hold = held.hold_before(3)  # mid-stream: after the first text delta
    model.add(mm.sse_text("Crisp leaves falling"), held, mm.sse_text("Still here."))
    async with open_client(transport, home, env=ENV) as c:
        tid = await first_turn(c, home)
        started = await compact(c, tid)
        assert await asyncio.to_thread(hold.reached.wait, 10)
        turn_id = started["turn"]["id"]
        assert await c.call("turn/interrupt", {"threadId": tid, "turnId": turn_id}) == {}
        turn = await completed_turn(c)
        assert turn["id"] == turn_id and turn["status"] == "interrupted"
        assert "thread/compacted" not in [m["method"] for m in turn_messages(c, turn_id)]
        hold.release.set()
        await run_turn(c, tid, "Go on.")
        assert (await completed_turn(c))["status"] == "completed"
    first, _, after = (r.body for r in model.model_requests())
    assert texts(after) == [
        *texts(first),
        ("assistant", "Crisp leaves falling"),
        ("user", "Go on."),
    ]


async def test_a_compaction_turn_cannot_be_steered(
    transport: str, home: Path, model: MockModelServer
) -> None:
    write_config(home, model.base_url)
    held = mm.sse_text(SUMMARY)
    hold = held.hold_before(3)
    model.add(mm.sse_text("Crisp leaves falling"), held)
    async with open_client(transport, home, env=ENV) as c:
        tid = await first_turn(c, home)
        turn_id = (await compact(c, tid))["turn"]["id"]
        assert await asyncio.to_thread(hold.reached.wait, 10)
        more = [{"type": "text", "text": "also this"}]
        steer = await c.request(
            "turn/steer", {"threadId": tid, "expectedTurnId": turn_id, "input": more}
        )
        assert steer["error"]["code"] == -32600
        assert steer["error"]["message"] == "cannot steer a compact turn"
        assert steer["error"]["data"]["codexErrorInfo"] == NOT_STEERABLE
        start = await c.request("turn/start", {"threadId": tid, "input": more})
        assert start["error"]["data"]["codexErrorInfo"] == NOT_STEERABLE
        again = await c.request("thread/compact/start", {"threadId": tid})
        assert again["error"]["message"] == f"thread {tid} already has an active turn"
        hold.release.set()
        turn = await completed_turn(c)
        assert turn["id"] == turn_id and turn["status"] == "completed"
        # No agent message was streamed: the summary reached the history only.
        assert not [m for m in turn_messages(c, turn_id) if m["method"].startswith("item/agent")]
    assert "also this" not in str(model.model_requests()[-1].body)


async def test_an_ephemeral_thread_compacts_in_memory(
    transport: str, home: Path, model: MockModelServer
) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("Crisp leaves falling"), mm.sse_text(SUMMARY), mm.sse_text("Again."))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home, ephemeral=True)
        await run_turn(c, tid, "Write a haiku about autumn.")
        assert (await completed_turn(c))["status"] == "completed"
        assert await c.call("thread/compact/start", {"threadId": tid}) == {}
        assert (await completed_turn(c))["status"] == "completed"
        await run_turn(c, tid, "Continue.")
        assert (await completed_turn(c))["status"] == "completed"
    after = model.model_requests()[-1].body
    assert texts(after) == [*compacted("Write a haiku about autumn."), ("user", "Continue.")]
    assert not list(home.rglob("rollout-*.jsonl"))


async def test_unknown_thread_is_an_error_like_turn_start(
    transport: str, home: Path, model: MockModelServer
) -> None:
    write_config(home, model.base_url)
    unknown = str(uuid.uuid4())
    async with open_client(transport, home, env=ENV) as c:
        reply = await c.request("thread/compact/start", {"threadId": unknown})
        assert reply["error"] == {"code": -32600, "message": f"thread not found: {unknown}"}
        turn = await c.request(
            "turn/start", {"threadId": unknown, "input": [{"type": "text", "text": "hi"}]}
        )
        assert turn["error"] == reply["error"]
        missing = await c.request("thread/compact/start", {})
        assert missing["error"]["code"] == -32600 and "threadId" in missing["error"]["message"]
    assert not model.model_requests()


def user(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": list(content)}


def text(t: str) -> dict[str, Any]:
    return {"type": "input_text", "text": t}


def test_replacement_history_keeps_the_newest_user_messages_within_the_bound() -> None:
    history = [
        user(text("a" * 50)),
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "x"}]},
        user(text("b" * 30)),
        {"type": "function_call", "call_id": "c1", "name": "shell_command", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "done"},
        user(text("c" * 40), {"type": "input_image", "image_url": "data:image/png;base64,AA=="}),
        user({"type": "input_image", "image_url": "data:image/png;base64,AA=="}),
        user(text(f"{SUMMARY_PREFIX}\n\nan earlier summary")),
    ]
    kept = [m["content"][0]["text"] for m in replacement_history(history, "new", max_chars=100)]
    # c and b fit whole (70); a is cut to the 30 characters left, marker included.
    assert kept[1:] == ["b" * 30, "c" * 40, f"{SUMMARY_PREFIX}\n\nnew"]
    assert kept[0].startswith("a") and kept[0].endswith("[... truncated]") and len(kept[0]) == 30
    everything = replacement_history(history, "new")
    assert [m["role"] for m in everything] == ["user"] * 4
    assert all(len(m["content"]) == 1 for m in everything)  # images are gone
    assert replacement_history([], "only") == [user(text(f"{SUMMARY_PREFIX}\n\nonly"))]
