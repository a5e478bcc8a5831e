"""Threads and turns end to end over all three transports, against a real HTTP mock model.

Covers: a streamed text reply, reasoning summaries, shell approvals (accept, decline, cancel,
acceptForSession), apply_patch with approval and the file on disk, interrupt during a pending
approval, retry then success, permanent failure, steer, resume after a restart, and
thread/list paging over 60 threads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import ENV, write_config
from tests.harness import SOCKET_TRANSPORTS, WireClient, is_request, open_client
from tests.support import mock_model as mm


async def start_thread(c: WireClient, cwd: Path, **params: Any) -> str:
    result = await c.call("thread/start", {"cwd": str(cwd), **params})
    await c.notification("thread/started")
    return str(result["thread"]["id"])


async def run_turn(c: WireClient, thread_id: str, text: str) -> str:
    result = await c.call(
        "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
    )
    assert result["turn"]["status"] == "inProgress"
    return str(result["turn"]["id"])


async def completed_turn(c: WireClient) -> dict[str, Any]:
    return (await c.notification("turn/completed"))["params"]["turn"]


async def next_request(c: WireClient) -> dict[str, Any]:
    return await c.wait_for(is_request)


def items_of(c: WireClient, method: str, kind: str) -> list[dict[str, Any]]:
    return [
        m["params"]["item"]
        for m in c.seen
        if m.get("method") == method and m["params"]["item"]["type"] == kind
    ]


@pytest.mark.parametrize("transport", SOCKET_TRANSPORTS)
async def test_text_reply_streams_deltas(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("Hello from the mock.", chunks=["Hello ", "from ", "the mock."]))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        turn_id = await run_turn(c, tid, "Say hello.")
        turn = await completed_turn(c)
        assert turn["id"] == turn_id and turn["status"] == "completed"
        deltas = [
            m["params"]["delta"] for m in c.seen if m.get("method") == "item/agentMessage/delta"
        ]
        done = items_of(c, "item/completed", "agentMessage")
        assert done[0]["text"] == "".join(deltas) == "Hello from the mock."
        # As the reference: the finished turn is summarised by its final agent message.
        assert turn["itemsView"] == "summary" and turn["items"] == [done[0]]
        started = [m.get("method") for m in c.seen]
        assert started.index("turn/started") < started.index("item/agentMessage/delta")
        assert items_of(c, "item/completed", "userMessage")[0]["content"][0]["text"] == "Say hello."
    req = model.requests[-1]
    assert req.header("authorization") == "Bearer sk-test-mock-key"
    assert req.header("originator") == "test_client"
    assert req.body["input"][-1]["role"] == "user"


async def test_reasoning_summary(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_reasoning_then_text("Thinking it over", "Done."))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "Think.")
        assert (await completed_turn(c))["status"] == "completed"
        summary = "".join(
            m["params"]["delta"]
            for m in c.seen
            if m.get("method") == "item/reasoning/summaryTextDelta"
        )
        assert summary == "Thinking it over"
        assert any(m.get("method") == "item/reasoning/summaryPartAdded" for m in c.seen)
        assert items_of(c, "item/completed", "reasoning")[0]["summary"] == ["Thinking it over"]


async def test_shell_approval_accept(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="untrusted")
    marker = home / "marker"
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}),
        mm.sse_text("Command finished."),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "RUN_SHELL")
        req = await next_request(c)
        assert req["method"] == "item/commandExecution/requestApproval"
        assert req["params"]["itemId"] == "call_1" and isinstance(req["id"], int)
        assert not marker.exists()
        await c.send({"id": req["id"], "result": {"decision": "accept"}})
        resolved = await c.notification("serverRequest/resolved")
        assert resolved["params"] == {"threadId": tid, "requestId": req["id"]}
        assert (await completed_turn(c))["status"] == "completed"
        cmd = items_of(c, "item/completed", "commandExecution")[0]
        assert cmd["status"] == "completed" and cmd["exitCode"] == 0
        assert marker.exists()
        flags = [
            m["params"]["status"].get("activeFlags")
            for m in c.seen
            if m.get("method") == "thread/status/changed"
        ]
        assert ["waitingOnApproval"] in flags
    outputs = [i for i in model.requests[-1].body["input"] if i["type"] == "function_call_output"]
    assert outputs and outputs[0]["call_id"] == "call_1"


async def test_shell_approval_decline_and_cancel(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="untrusted")
    marker = home / "never"
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}),
        mm.sse_text("Understood."),
        mm.sse_function_call("call_2", "shell_command", {"command": f"touch {marker}"}),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "one")
        req = await next_request(c)
        await c.send({"id": req["id"], "result": {"decision": "decline"}})
        assert (await completed_turn(c))["status"] == "completed"
        assert items_of(c, "item/completed", "commandExecution")[0]["status"] == "declined"
        await run_turn(c, tid, "two")
        req = await next_request(c)
        await c.send({"id": req["id"], "result": {"decision": "cancel"}})
        assert (await completed_turn(c))["status"] == "interrupted"
    assert not marker.exists()


async def test_accept_for_session_skips_later_asks(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="untrusted")
    cmd = f"touch {home / 'm'}"
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": cmd}),
        mm.sse_function_call("call_2", "shell_command", {"command": cmd}),
        mm.sse_text("ok"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "twice")
        req = await next_request(c)
        await c.send({"id": req["id"], "result": {"decision": "acceptForSession"}})
        assert (await completed_turn(c))["status"] == "completed"
        assert len([m for m in c.seen if is_request(m)]) == 1
        assert len(items_of(c, "item/completed", "commandExecution")) == 2


async def test_apply_patch_with_approval(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="untrusted", sandbox="workspace-write")
    (home / "old.txt").write_text("one\ntwo\n")
    (home / "gone.txt").write_text("bye\n")
    patch = (
        "*** Begin Patch\n*** Add File: new.txt\n+hello\n"
        "*** Update File: old.txt\n@@\n one\n-two\n+TWO\n"
        "*** Delete File: gone.txt\n*** End Patch\n"
    )
    model.add(mm.sse_function_call("call_p", "apply_patch", {"input": patch}), mm.sse_text("ok"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "edit")
        started = await c.wait_for(
            lambda m: (
                m.get("method") == "item/started" and m["params"]["item"]["type"] == "fileChange"
            )
        )
        kinds = {ch["path"]: ch["kind"]["type"] for ch in started["params"]["item"]["changes"]}
        assert kinds == {
            str(home / "new.txt"): "add",
            str(home / "old.txt"): "update",
            str(home / "gone.txt"): "delete",
        }
        req = await next_request(c)
        assert req["method"] == "item/fileChange/requestApproval"
        assert not (home / "new.txt").exists()
        await c.send({"id": req["id"], "result": {"decision": "accept"}})
        assert (await completed_turn(c))["status"] == "completed"
        diff = await c.notification("turn/diff/updated")
        assert "+TWO" in diff["params"]["diff"]
    assert (home / "new.txt").read_text() == "hello\n"
    assert (home / "old.txt").read_text() == "one\nTWO\n"
    assert not (home / "gone.txt").exists()


async def test_interrupt_during_pending_approval(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="untrusted")
    model.add(mm.sse_function_call("call_1", "shell_command", {"command": "touch x"}))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        turn_id = await run_turn(c, tid, "go")
        await next_request(c)
        reply = await c.request("turn/interrupt", {"threadId": tid, "turnId": turn_id})
        assert reply["result"] == {}
        turn = await completed_turn(c)
        assert turn["status"] == "interrupted"
        order = [m.get("id") if "result" in m else m.get("method") for m in c.seen]
        assert order.index(reply["id"]) < order.index("turn/completed")
        assert any(m.get("method") == "serverRequest/resolved" for m in c.seen)
        again = await c.request("turn/interrupt", {"threadId": tid})
        assert again["error"]["message"] == "no active turn to interrupt"


async def test_retry_then_success(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, request_retries=2)
    model.add(mm.http_error(500), mm.sse_text("after retry"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "hi")
        err = await c.notification("error")
        assert err["params"]["willRetry"] is True
        assert (await completed_turn(c))["status"] == "completed"
        assert items_of(c, "item/completed", "agentMessage")[0]["text"] == "after retry"


async def test_broken_stream_is_retried_on_the_stream_budget(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url, stream_retries=1)
    model.add(mm.sse_truncated(mm.text_events("partial")), mm.sse_text("whole answer"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "hi")
        err = await c.notification("error")
        assert err["params"]["willRetry"] is True
        assert "responseStreamDisconnected" in err["params"]["error"]["codexErrorInfo"]
        assert (await completed_turn(c))["status"] == "completed"
        texts = [i["text"] for i in items_of(c, "item/completed", "agentMessage")]
        assert texts[-1] == "whole answer"
        started = items_of(c, "item/started", "agentMessage")
        assert len(started) == len(texts)  # the broken attempt's item was closed too


async def test_permanent_failure_fails_the_turn(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.http_error(400))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "hi")
        turn = await completed_turn(c)
        assert turn["status"] == "failed"
        assert turn["error"]["message"] and turn["error"]["codexErrorInfo"]
        errors = [m["params"] for m in c.seen if m.get("method") == "error"]
        assert errors and errors[-1]["willRetry"] is False
        # the thread is still usable
        model.add(mm.sse_text("fine now"))
        await run_turn(c, tid, "again")
        assert (await completed_turn(c))["status"] == "completed"


async def test_missing_api_key_fails_clearly(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    async with open_client(transport, home) as c:  # no MOCK_API_KEY in the environment
        tid = await start_thread(c, home)
        await run_turn(c, tid, "hi")
        turn = await completed_turn(c)
        assert turn["status"] == "failed"
        assert "MOCK_API_KEY" in turn["error"]["message"]
    assert not model.requests


async def test_steer_adds_input(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    first = mm.sse_text("first answer")
    hold = first.hold_before(1)
    model.add(first, mm.sse_text("steered answer"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        turn_id = await run_turn(c, tid, "start")
        assert await asyncio.to_thread(hold.reached.wait, 10)
        steer = await c.call(
            "turn/steer",
            {
                "threadId": tid,
                "expectedTurnId": turn_id,
                "input": [{"type": "text", "text": "also this"}],
            },
        )
        assert steer == {"turnId": turn_id}
        hold.release.set()
        assert (await completed_turn(c))["status"] == "completed"
        bad = await c.request(
            "turn/steer",
            {
                "threadId": tid,
                "expectedTurnId": turn_id,
                "input": [{"type": "text", "text": "late"}],
            },
        )
        assert bad["error"]["message"] == "no active turn to steer"
    texts = [
        i["content"][0]["text"] for i in model.requests[-1].body["input"] if i.get("role") == "user"
    ]
    assert texts == ["start", "also this"]


async def test_resume_after_restart(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("remembered"), mm.sse_text("second"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "remember this")
        await completed_turn(c)
    async with open_client(transport, home, env=ENV) as c:
        resumed = await c.call("thread/resume", {"threadId": tid})
        turns = resumed["thread"]["turns"]
        assert [t["status"] for t in turns] == ["completed"]
        assert [i["type"] for i in turns[0]["items"]] == ["userMessage", "agentMessage"]
        await run_turn(c, tid, "and now?")
        assert (await completed_turn(c))["status"] == "completed"
    roles = [i.get("role") for i in model.requests[-1].body["input"] if i["type"] == "message"]
    assert roles == ["user", "assistant", "user"]


async def test_thread_list_pages_over_60_threads(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(*[mm.sse_text(f"reply {i}") for i in range(60)])
    async with open_client(transport, home, env=ENV) as c:
        ids = []
        for i in range(60):
            tid = await start_thread(c, home)
            await run_turn(c, tid, f"thread {i}")
            await completed_turn(c)
            ids.append(tid)
        seen: list[str] = []
        cursor = None
        while True:
            page = await c.call("thread/list", {"limit": 25, "cursor": cursor})
            seen += [t["id"] for t in page["data"]]
            cursor = page["nextCursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == 60
        await c.call("thread/archive", {"threadId": ids[0]})
        assert (await c.notification("thread/archived"))["params"] == {"threadId": ids[0]}
        archived = await c.call("thread/list", {"archived": True})
        assert [t["id"] for t in archived["data"]] == [ids[0]]
        restored = await c.call("thread/unarchive", {"threadId": ids[0]})
        assert restored["thread"]["id"] == ids[0]
        assert (await c.notification("thread/unarchived"))["params"] == {"threadId": ids[0]}
        await c.call("thread/name/set", {"threadId": ids[1], "name": "Named"})
        named = await c.notification("thread/name/updated")
        assert named["params"] == {"threadId": ids[1], "threadName": "Named"}
        found = await c.call("thread/list", {"searchTerm": "Named"})
        assert [t["id"] for t in found["data"]] == [ids[1]]
