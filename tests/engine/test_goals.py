"""Thread goals end to end, against the mock model.

Covers: ``thread/goal/get|set|clear`` with the reference's replies and notifications (a partial
set keeps the other fields, a set without a goal or objective is -32600 ``no goal exists``, a
second clear answers ``cleared: false``); an active goal on an idle thread driving continuation
turns back to back until the model marks it complete with ``update_goal``; the token budget
stopping them (``budgetLimited``); the goal kept across a restart, announced to a resuming
client (``thread/goal/cleared`` when there is none, as the reference does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.harness import WireClient, open_client
from tests.support import mock_model as mm


async def start(c: WireClient, cwd: Path) -> str:
    result = await c.call("thread/start", {"cwd": str(cwd)})
    await c.notification("thread/started")
    return str(result["thread"]["id"])


def goal_updates(c: WireClient) -> list[dict[str, Any]]:
    return [m["params"] for m in c.seen if m.get("method") == "thread/goal/updated"]


async def test_set_get_clear(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    async with open_client(transport, home, env=ENV) as c:
        tid = await start(c, home)
        assert await c.call("thread/goal/get", {"threadId": tid}) == {"goal": None}
        missing = await c.request("thread/goal/set", {"threadId": tid, "status": "active"})
        assert missing["error"] == {"code": -32600, "message": "no goal exists"}
        params = {
            "threadId": tid,
            "objective": "Write the report",
            "tokenBudget": 1000,
            "status": "paused",
        }
        goal = (await c.call("thread/goal/set", params))["goal"]
        assert goal["threadId"] == tid and goal["objective"] == "Write the report"
        assert goal["status"] == "paused" and goal["tokenBudget"] == 1000
        assert goal["tokensUsed"] == 0 and goal["timeUsedSeconds"] == 0
        assert isinstance(goal["createdAt"], int) and isinstance(goal["updatedAt"], int)
        note = (await c.notification("thread/goal/updated"))["params"]
        assert note == {"threadId": tid, "turnId": None, "goal": goal}
        partial = (await c.call("thread/goal/set", {"threadId": tid, "tokenBudget": 500}))["goal"]
        assert partial["objective"] == "Write the report" and partial["tokenBudget"] == 500
        assert partial["status"] == "paused"
        assert (await c.call("thread/goal/get", {"threadId": tid}))["goal"] == partial
        bad = await c.request("thread/goal/set", {"threadId": tid, "objective": " "})
        assert bad["error"]["code"] == -32600
        assert await c.call("thread/goal/clear", {"threadId": tid}) == {"cleared": True}
        cleared = (await c.notification("thread/goal/cleared"))["params"]
        assert cleared == {"threadId": tid}
        assert await c.call("thread/goal/clear", {"threadId": tid}) == {"cleared": False}
        assert await c.call("thread/goal/get", {"threadId": tid}) == {"goal": None}
        assert not [m for m in c.seen if m.get("method") == "turn/started"]


async def test_active_goal_runs_until_complete(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    usage = mm.sse_usage(60, 40)
    model.add(
        mm.sse_text("Started the report.", usage=usage),
        mm.sse_function_call("call_g", "update_goal", {"status": "complete"}, usage=usage),
        mm.sse_text("The report is done.", usage=usage),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start(c, home)
        reply = await c.request("thread/goal/set", {"threadId": tid, "objective": "Write it"})
        assert reply["result"]["goal"]["status"] == "active"
        first = (await c.notification("turn/completed"))["params"]["turn"]
        second = (await c.notification("turn/completed"))["params"]["turn"]
        assert first["status"] == second["status"] == "completed"
        # The turn is counted against the goal once it has ended.
        await c.wait_for(
            lambda m: (
                m.get("method") == "thread/goal/updated"
                and m["params"]["turnId"] == second["id"]
                and m["params"]["goal"]["tokensUsed"] > 100
            )
        )
        final = (await c.call("thread/goal/get", {"threadId": tid}))["goal"]
        assert final["status"] == "complete"
        assert final["tokensUsed"] == 300
        order = [m.get("method", "reply") for m in c.seen if m is reply or "method" in m]
        assert order.index("reply") < order.index("turn/started")
        statuses = [u["goal"]["status"] for u in goal_updates(c)]
        assert statuses[0] == "active" and statuses[-1] == "complete"
        after_first = next(u for u in goal_updates(c) if u["turnId"] == first["id"])
        assert after_first["goal"]["tokensUsed"] == 100
        # No user message: continuation turns carry only the goal's note.
        assert not [
            m
            for m in c.seen
            if m.get("method") == "item/started" and m["params"]["item"]["type"] == "userMessage"
        ]
    assert len(model.model_requests()) == 3
    body = model.model_requests()[0].body
    note = body["input"][0]
    assert note["role"] == "developer" and "<objective>Write it</objective>" in str(note)
    assert {"get_goal", "update_goal"} <= {t.get("name") for t in body["tools"]}


async def test_budget_stops_the_goal(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    usage = mm.sse_usage(60, 40)
    model.add(mm.sse_text("one", usage=usage), mm.sse_text("two", usage=usage))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start(c, home)
        params = {"threadId": tid, "objective": "Keep going", "tokenBudget": 150}
        await c.call("thread/goal/set", params)
        await c.notification("turn/completed")
        await c.notification("turn/completed")
        limited = await c.wait_for(
            lambda m: (
                m.get("method") == "thread/goal/updated"
                and m["params"]["goal"]["status"] == "budgetLimited"
            )
        )
        assert limited["params"]["goal"]["tokensUsed"] == 200
        # Asked once more, the answer is the same and no third turn has started.
        assert (await c.call("thread/goal/get", {"threadId": tid}))["goal"]["status"] == (
            "budgetLimited"
        )
        assert len([m for m in c.seen if m.get("method") == "turn/started"]) == 2
    assert len(model.model_requests()) == 2


async def test_goal_survives_a_restart(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("hello"), mm.sse_text("again"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start(c, home)
        plain = await start(c, home)
        for thread_id in (tid, plain):
            await c.call(
                "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "hi"}]}
            )
            await c.notification("turn/completed")
        params = {"threadId": tid, "objective": "Ship it", "status": "paused", "tokenBudget": 9}
        goal = (await c.call("thread/goal/set", params))["goal"]
    async with open_client(transport, home, env=ENV) as c:
        assert (await c.call("thread/goal/get", {"threadId": tid}))["goal"] == goal
        await c.call("thread/resume", {"threadId": tid})
        note = (await c.notification("thread/goal/updated"))["params"]
        assert note == {"threadId": tid, "turnId": None, "goal": goal}
        await c.call("thread/resume", {"threadId": plain})
        assert (await c.notification("thread/goal/cleared"))["params"] == {"threadId": plain}
        resumed = await c.call("thread/goal/set", {"threadId": tid, "objective": "Ship it!"})
        assert resumed["goal"]["createdAt"] == goal["createdAt"]
        assert resumed["goal"]["tokenBudget"] == 9
