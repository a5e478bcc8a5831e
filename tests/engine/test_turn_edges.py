"""Turn edges over all three transports, against a real HTTP mock model: `turn/steer` refused
(wrong `expectedTurnId`, no active turn) without disturbing the running turn; `turn/start`
overrides (`cwd`, `approvalPolicy`, `sandboxPolicy`, `summary`) that persist for later turns;
a pending approval resolved when its turn is interrupted, a late answer ignored; turns of two
threads running at once while a busy thread refuses a second `turn/start`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, items_of, next_request, run_turn, start_thread
from tests.harness import WireClient, is_request, open_client
from tests.support import mock_model as mm

INVALID_REQUEST = -32600


def text_input(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


def user_texts(body: dict[str, Any]) -> list[str]:
    return [
        part["text"]
        for item in body["input"]
        if item.get("type") == "message" and item.get("role") == "user"
        for part in item["content"]
        if part.get("type") == "input_text"
    ]


async def turn_completed_on(c: WireClient, thread_id: str) -> dict[str, Any]:
    msg = await c.wait_for(
        lambda m: m.get("method") == "turn/completed" and m["params"]["threadId"] == thread_id
    )
    return dict(msg["params"]["turn"])


async def wait_reached(hold: mm.Hold) -> None:
    assert await asyncio.to_thread(hold.reached.wait, 10), "the model stream never reached its hold"


async def test_steer_refused_for_a_wrong_or_missing_turn(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url)
    reply = mm.sse_text("first answer")
    hold = reply.hold_before(1)
    model.add(reply)
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        idle = await c.request(
            "turn/steer",
            {"threadId": tid, "expectedTurnId": "no-such-turn", "input": text_input("early")},
        )
        assert idle["error"]["code"] == INVALID_REQUEST
        assert idle["error"]["message"] == "no active turn to steer"

        turn_id = await run_turn(c, tid, "start")
        await wait_reached(hold)
        wrong = await c.request(
            "turn/steer",
            {"threadId": tid, "expectedTurnId": "not-the-turn", "input": text_input("wrong")},
        )
        assert wrong["error"]["code"] == INVALID_REQUEST
        assert (
            wrong["error"]["message"]
            == f"expected active turn id `not-the-turn` but found `{turn_id}`"
        )
        empty = await c.request(
            "turn/steer", {"threadId": tid, "expectedTurnId": "", "input": text_input("empty")}
        )
        assert empty["error"]["code"] == INVALID_REQUEST
        assert empty["error"]["message"] == "expectedTurnId must not be empty"
        # The refusals left the running turn alone: it is still running, and finishes as usual.
        assert not [m for m in c.seen if m.get("method") == "turn/completed"]
        hold.release.set()
        turn = await completed_turn(c)
        assert turn["id"] == turn_id and turn["status"] == "completed"
        assert [i["text"] for i in items_of(c, "item/completed", "agentMessage")] == [
            "first answer"
        ]
        # No refused input became a user message of the turn.
        users = items_of(c, "item/completed", "userMessage")
        assert [u["content"][0]["text"] for u in users] == ["start"]
    requests = model.model_requests()
    assert len(requests) == 1
    assert user_texts(requests[0].body) == ["start"]


async def test_cwd_override_persists(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    work = home / "work"
    work.mkdir()
    model.add(
        mm.sse_text("moved"),
        mm.sse_function_call("call_1", "shell_command", {"command": "pwd"}),
        mm.sse_text("there"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await c.call("turn/start", {"threadId": tid, "input": text_input("one"), "cwd": str(work)})
        assert (await completed_turn(c))["status"] == "completed"
        await run_turn(c, tid, "two")  # no override: the thread keeps the new cwd
        assert (await completed_turn(c))["status"] == "completed"
        cmd = items_of(c, "item/completed", "commandExecution")[0]
        assert cmd["cwd"] == str(work)
        assert cmd["status"] == "completed" and cmd["aggregatedOutput"].strip() == str(work)
        read = await c.call("thread/read", {"threadId": tid})
        assert read["thread"]["cwd"] == str(work)
        resumed = await c.call("thread/resume", {"threadId": tid})
        assert resumed["cwd"] == str(work) and resumed["thread"]["cwd"] == str(work)


async def test_approval_policy_override_persists(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="never")
    marker = home / "marker"
    model.add(
        mm.sse_text("noted"),
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}),
        mm.sse_text("ran it"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        assert (await c.call("thread/resume", {"threadId": tid}))["approvalPolicy"] == "never"
        await c.call(
            "turn/start",
            {"threadId": tid, "input": text_input("one"), "approvalPolicy": "untrusted"},
        )
        assert (await completed_turn(c))["status"] == "completed"
        await run_turn(c, tid, "two")  # no override: the thread still asks first
        req = await next_request(c)
        assert req["method"] == "item/commandExecution/requestApproval"
        assert req["params"]["threadId"] == tid and req["params"]["itemId"] == "call_1"
        assert not marker.exists()
        await c.send({"id": req["id"], "result": {"decision": "accept"}})
        assert (await completed_turn(c))["status"] == "completed"
        assert marker.exists()
        resumed = await c.call("thread/resume", {"threadId": tid})
        assert resumed["approvalPolicy"] == "untrusted"


async def test_sandbox_policy_override_persists(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="never", sandbox="danger-full-access")
    marker = home / "marker"
    read_only = {"type": "readOnly", "networkAccess": False}
    model.add(
        mm.sse_text("locked down"),
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}),
        mm.sse_text("could not write"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        started = await c.call("thread/resume", {"threadId": tid})
        assert started["sandbox"] == {"type": "dangerFullAccess"}
        await c.call(
            "turn/start", {"threadId": tid, "input": text_input("one"), "sandboxPolicy": read_only}
        )
        assert (await completed_turn(c))["status"] == "completed"
        await run_turn(c, tid, "two")  # no override: the command runs read-only
        assert (await completed_turn(c))["status"] == "completed"
        cmd = items_of(c, "item/completed", "commandExecution")[0]
        # Confined by bubblewrap it fails on the read-only filesystem; without bubblewrap,
        # under approval `never`, it is refused. Either way nothing is written.
        assert cmd["status"] in ("failed", "declined")
        assert not [m for m in c.seen if is_request(m)]
        resumed = await c.call("thread/resume", {"threadId": tid})
        assert resumed["sandbox"] == read_only
    assert not marker.exists()


async def test_summary_override_persists(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("a"), mm.sse_text("b"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await c.call(
            "turn/start", {"threadId": tid, "input": text_input("one"), "summary": "detailed"}
        )
        assert (await completed_turn(c))["status"] == "completed"
        await run_turn(c, tid, "two")
        assert (await completed_turn(c))["status"] == "completed"
    requests = model.model_requests()
    assert len(requests) == 2
    assert [r.body.get("reasoning", {}).get("summary") for r in requests] == [
        "detailed",
        "detailed",
    ]


async def test_interrupt_resolves_the_pending_approval(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url, approval="untrusted")
    marker = home / "marker"
    model.add(mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        turn_id = await run_turn(c, tid, "go")
        req = await next_request(c)
        assert req["method"] == "item/commandExecution/requestApproval"
        await c.wait_for(
            lambda m: (
                m.get("method") == "thread/status/changed"
                and m["params"]["threadId"] == tid
                and m["params"]["status"]
                == {"type": "active", "activeFlags": ["waitingOnApproval"]}
            )
        )
        reply = await c.request("turn/interrupt", {"threadId": tid, "turnId": turn_id})
        assert reply["result"] == {}
        turn = await completed_turn(c)
        assert turn["id"] == turn_id and turn["status"] == "interrupted"
        resolved = [m for m in c.seen if m.get("method") == "serverRequest/resolved"]
        assert [m["params"] for m in resolved] == [{"threadId": tid, "requestId": req["id"]}]
        completed = next(m for m in c.seen if m.get("method") == "turn/completed")
        assert c.seen.index(resolved[0]) < c.seen.index(completed)
        # Clients must not rely on status changes' order against turn notifications (§4.5.6).
        await c.wait_for(
            lambda m: (
                m.get("method") == "thread/status/changed"
                and m["params"]["threadId"] == tid
                and m["params"]["status"] == {"type": "idle"}
            )
        )

        # A late answer to the cancelled request is ignored: no reply, no second resolve, the
        # command does not run and the model is not called again.
        await c.send({"id": req["id"], "result": {"decision": "accept"}})
        # Thread-scoped requests run in arrival order, after the answer above was handled; a
        # resume replays pending requests before the next one on the thread is answered.
        await c.call("thread/resume", {"threadId": tid})
        await c.call("thread/resume", {"threadId": tid})
        assert len([m for m in c.seen if m.get("method") == "serverRequest/resolved"]) == 1
        assert [m["id"] for m in c.seen if is_request(m)] == [req["id"]]
        assert not [m for m in c.seen if "error" in m]
        assert not marker.exists()
    assert len(model.model_requests()) == 1


async def test_threads_run_turns_concurrently_but_one_thread_is_busy(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url)
    slow = mm.sse_text("slow answer")
    hold = slow.hold_before(1)
    model.add(slow, mm.sse_text("quick answer"), mm.sse_text("later"))
    async with open_client(transport, home, env=ENV) as c:
        first = await start_thread(c, home)
        second = await start_thread(c, home)
        first_turn = await run_turn(c, first, "slow one")
        await wait_reached(hold)  # the first thread's model stream is held mid-answer

        second_turn = await run_turn(c, second, "quick one")
        done = await turn_completed_on(c, second)
        assert done["id"] == second_turn and done["status"] == "completed"
        assert not [
            m
            for m in c.seen
            if m.get("method") == "turn/completed" and m["params"]["threadId"] == first
        ]

        busy = await c.request(
            "turn/start",
            {"threadId": first, "input": text_input("while busy"), "model": "other-model"},
        )
        assert busy["error"]["code"] == INVALID_REQUEST
        assert busy["error"]["message"] == f"thread {first} already has an active turn"

        hold.release.set()
        done = await turn_completed_on(c, first)
        assert done["id"] == first_turn and done["status"] == "completed"
        messages = {
            m["params"]["threadId"]: m["params"]["item"]["text"]
            for m in c.seen
            if m.get("method") == "item/completed" and m["params"]["item"]["type"] == "agentMessage"
        }
        assert messages == {first: "slow answer", second: "quick answer"}
        started = [m["params"]["threadId"] for m in c.seen if m.get("method") == "turn/started"]
        assert sorted(started) == sorted([first, second])
        # The refused turn/start changed nothing: its override did not stick either.
        await run_turn(c, first, "after")
        assert (await turn_completed_on(c, first))["status"] == "completed"
    requests = model.model_requests()
    assert [user_texts(r.body) for r in requests] == [
        ["slow one"],
        ["quick one"],
        ["slow one", "after"],
    ]
    assert [r.body["model"] for r in requests] == ["mock-model"] * 3


async def test_pipelined_turn_starts_on_one_thread_are_serialised(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url)
    reply = mm.sse_text("only answer")
    hold = reply.hold_before(1)
    model.add(reply)
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        # Both requests are on the wire before either is answered: thread-scoped requests run
        # one at a time in arrival order, so the first starts the turn and the second is refused.
        for rid, text in (("first", "one"), ("second", "two")):
            await c.send(
                {
                    "id": rid,
                    "method": "turn/start",
                    "params": {"threadId": tid, "input": text_input(text)},
                }
            )
        accepted = await c.reply_to("first")
        refused = await c.reply_to("second")
        turn_id = accepted["result"]["turn"]["id"]
        assert refused["error"]["code"] == INVALID_REQUEST
        assert refused["error"]["message"] == f"thread {tid} already has an active turn"
        await wait_reached(hold)
        hold.release.set()
        turn = await completed_turn(c)
        assert turn["id"] == turn_id and turn["status"] == "completed"
        assert len([m for m in c.seen if m.get("method") == "turn/started"]) == 1
    requests = model.model_requests()
    assert [user_texts(r.body) for r in requests] == [["one"]]


async def test_turn_overrides_survive_a_restart(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="never", sandbox="danger-full-access")
    work = home / "work"
    work.mkdir()
    read_only = {"type": "readOnly", "networkAccess": False}
    model.add(mm.sse_text("a"), mm.sse_text("b"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await c.call(
            "turn/start",
            {
                "threadId": tid,
                "input": text_input("one"),
                "cwd": str(work),
                "approvalPolicy": "untrusted",
                "sandboxPolicy": read_only,
                "summary": "concise",
            },
        )
        assert (await completed_turn(c))["status"] == "completed"
    async with open_client(transport, home, env=ENV) as c:  # a new server reads the rollout
        resumed = await c.call("thread/resume", {"threadId": tid})
        assert resumed["cwd"] == str(work)
        assert resumed["approvalPolicy"] == "untrusted"
        assert resumed["sandbox"] == read_only
        await run_turn(c, tid, "two")
        assert (await completed_turn(c))["status"] == "completed"
    assert model.model_requests()[-1].body["reasoning"]["summary"] == "concise"
