"""More engine paths: the Chat Completions wire API, the scripted provider configured in
config.toml, restricted sandboxes without bubblewrap (ask instead of running unconfined, even
a known-safe command under ``untrusted``; a command accepted for the session runs again without
asking), the shape of a command approval request, a pending approval replayed to a client that
resumes the thread, and kill -9 mid-turn.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, next_request, run_turn, start_thread
from tests.harness import (
    StdioWire,
    is_request,
    open_client,
    spawn_stdio,
    start_ws_server,
    ws_connect,
)
from tests.support import mock_model as mm


async def test_chat_wire_api_text_and_tool_call(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url, wire_api="chat")
    marker = home / "chat-marker"
    model.add(
        mm.chat_tool_call("call_1", "shell_command", {"command": f"touch {marker}"}),
        mm.chat_text("All done."),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "make a marker")
        assert (await completed_turn(c))["status"] == "completed"
        texts = [
            m["params"]["item"]["text"]
            for m in c.seen
            if m.get("method") == "item/completed" and m["params"]["item"]["type"] == "agentMessage"
        ]
        assert texts == ["All done."]
    assert marker.exists()
    second = model.requests[-1].body
    assert second["messages"][-1]["role"] == "tool"
    assert model.requests[-1].path.endswith("/chat/completions")


async def test_scripted_provider_from_config(transport: str, home: Path) -> None:
    marker = home / "scripted-marker"
    script = home / "script.yaml"
    script.write_text(f'- shell: "touch {marker}"\n- text: "Scripted reply."\n', encoding="utf-8")
    (home / "config.toml").write_text(
        f"""
model = "scripted"
model_provider = "scripted"
approval_policy = "untrusted"
sandbox_mode = "danger-full-access"

[model_providers.scripted]
script = "{script}"
""",
        encoding="utf-8",
    )
    async with open_client(transport, home) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "go")
        req = await next_request(c)
        assert req["method"] == "item/commandExecution/requestApproval"
        await c.send({"id": req["id"], "result": {"decision": "accept"}})
        assert (await completed_turn(c))["status"] == "completed"
    assert marker.exists()


async def test_restricted_sandbox_without_bwrap_asks(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url, approval="on-request", sandbox="workspace-write")
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": "echo unconfined"}),
        mm.sse_text("ok"),
    )
    env = {**ENV, "APPSERVER_SANDBOX_BACKEND": "none"}
    async with open_client(transport, home, env=env) as c:
        warnings = [m for m in c.seen if m.get("method") == "configWarning"]
        warning = warnings[0] if warnings else await c.notification("configWarning")
        assert "APPSERVER_SANDBOX_BACKEND=none" in warning["params"]["summary"]
        started = await c.call("thread/start", {"cwd": str(home)})
        assert started["sandboxEnforcement"] == "approval"
        tid = started["thread"]["id"]
        await run_turn(c, tid, "run it")
        req = await next_request(c)
        assert req["method"] == "item/commandExecution/requestApproval"
        # The reference's shape (transcript-approval.jsonl): kind, environmentId and
        # availableDecisions always; no `reason` when there is none.
        params = req["params"]
        assert params["kind"] == "command" and params["environmentId"] == "local"
        assert "reason" not in params
        amendment = params["proposedExecpolicyAmendment"]
        assert amendment == ["echo", "unconfined"]  # the command's words, as the reference
        assert params["availableDecisions"] == [
            "accept",
            {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": amendment}},
            "cancel",
        ]
        await c.send({"id": req["id"], "result": {"decision": "decline"}})
        assert (await completed_turn(c))["status"] == "completed"
        outputs = [m for m in c.seen if m.get("method") == "item/commandExecution/outputDelta"]
        assert outputs == []


NO_BWRAP = {**ENV, "APPSERVER_SANDBOX_BACKEND": "none"}


def command_items(c: Any) -> list[dict[str, Any]]:
    return [
        m["params"]["item"]
        for m in c.seen
        if m.get("method") == "item/completed" and m["params"]["item"]["type"] == "commandExecution"
    ]


async def test_known_safe_command_without_bwrap_still_asks(
    transport: str, home: Path, model: Any
) -> None:
    # `untrusted` skips the ask for a known-safe command only when it can run confined.
    write_config(home, model.base_url, approval="untrusted", sandbox="workspace-write")
    (home / "listed.txt").write_text("x\n")
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": "ls"}),
        mm.sse_text("listed"),
    )
    async with open_client(transport, home, env=NO_BWRAP) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "list")
        req = await next_request(c)
        assert req["method"] == "item/commandExecution/requestApproval"
        assert req["params"]["itemId"] == "call_1" and req["params"]["command"] == "bash -c ls"
        assert command_items(c) == []  # nothing ran before the answer
        await c.send({"id": req["id"], "result": {"decision": "accept"}})
        assert (await completed_turn(c))["status"] == "completed"
        [item] = command_items(c)
        assert item["status"] == "completed" and item["exitCode"] == 0
        assert "listed.txt" in item["aggregatedOutput"]
        assert not any("internal error" in str(m) for m in c.seen)


async def test_accept_for_session_without_bwrap_runs_again_directly(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url, approval="on-request", sandbox="workspace-write")
    cmd = "echo session-approved"
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": cmd}),
        mm.sse_text("first"),
        mm.sse_function_call("call_2", "shell_command", {"command": cmd}),
        mm.sse_text("second"),
    )
    async with open_client(transport, home, env=NO_BWRAP) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "once")
        req = await next_request(c)
        assert req["params"]["itemId"] == "call_1"
        await c.send({"id": req["id"], "result": {"decision": "acceptForSession"}})
        assert (await completed_turn(c))["status"] == "completed"
        await run_turn(c, tid, "again")
        assert (await completed_turn(c))["status"] == "completed"
        assert len([m for m in c.seen if is_request(m)]) == 1
        items = command_items(c)
        assert [i["id"] for i in items] == ["call_1", "call_2"]
        assert all(i["status"] == "completed" and i["exitCode"] == 0 for i in items)
        assert all(i["aggregatedOutput"] == "session-approved\n" for i in items)


async def test_an_accepted_execpolicy_prefix_covers_plain_commands_only(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url, approval="untrusted", sandbox="danger-full-access")
    first, second = home / "first", home / "second"
    compound = f"touch {home / 'third'} && echo sneaky"
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {first}"}),
        mm.sse_text("one"),
        mm.sse_function_call("call_2", "shell_command", {"command": f"touch {second}"}),
        mm.sse_text("two"),
        mm.sse_function_call("call_3", "shell_command", {"command": compound}),
        mm.sse_text("three"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "first")
        req = await next_request(c)
        assert req["params"]["proposedExecpolicyAmendment"] == ["touch", str(first)]
        # The client widens the proposal to every `touch`, as an IDE's "always allow" does.
        decision = {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["touch"]}}
        await c.send({"id": req["id"], "result": {"decision": decision}})
        assert (await completed_turn(c))["status"] == "completed"
        await run_turn(c, tid, "second")  # a plain `touch`: no question
        assert (await completed_turn(c))["status"] == "completed"
        assert first.exists() and second.exists()
        await run_turn(c, tid, "third")  # starts with `touch`, but hides a second command
        req = await next_request(c)
        assert req["params"]["itemId"] == "call_3"
        assert req["params"]["proposedExecpolicyAmendment"] is None
        assert req["params"]["availableDecisions"] == ["accept", "acceptForSession", "cancel"]
        await c.send({"id": req["id"], "result": {"decision": "decline"}})
        assert (await completed_turn(c))["status"] == "completed"
        assert len([m for m in c.seen if is_request(m)]) == 2
    assert not (home / "third").exists()


async def test_pending_approval_is_replayed_on_resume(home: Path, model: Any) -> None:
    write_config(home, model.base_url, approval="untrusted")
    marker = home / "replayed"
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}),
        mm.sse_text("done"),
    )
    server = await start_ws_server(home, env=ENV)
    try:
        first = await ws_connect(server.url)
        await first.initialize()
        tid = await start_thread(first, home)
        await run_turn(first, tid, "go")
        original = await next_request(first)
        await first.close()  # the client vanishes with the approval unanswered

        second = await ws_connect(server.url)
        await second.initialize()
        resumed = await second.call("thread/resume", {"threadId": tid})
        assert resumed["thread"]["status"]["type"] == "active"
        replayed = await next_request(second)
        assert replayed["id"] == original["id"]
        assert replayed["params"]["itemId"] == "call_1"
        await second.send({"id": replayed["id"], "result": {"decision": "accept"}})
        assert (await completed_turn(second))["status"] == "completed"
        await second.close()
    finally:
        await server.stop()
    assert marker.exists()


async def test_kill9_mid_turn_then_resume(home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    stalled = mm.sse_text("never finished")
    hold = stalled.hold_before(2)
    model.add(stalled, mm.sse_text("after the crash"))
    client = StdioWire(await spawn_stdio(home, env=ENV))
    await client.initialize()
    tid = await start_thread(client, home)
    await run_turn(client, tid, "before the crash")
    assert await asyncio.to_thread(hold.reached.wait, 10)
    os.kill(client.proc.pid, signal.SIGKILL)
    await asyncio.wait_for(client.proc.wait(), 10)
    hold.release.set()
    await client.close()

    async with open_client("stdio", home, env=ENV) as c:
        listed = await c.call("thread/list", {})
        assert [t["id"] for t in listed["data"]] == [tid]
        resumed = await c.call("thread/resume", {"threadId": tid})
        turns = resumed["thread"]["turns"]
        assert [t["status"] for t in turns] == ["interrupted"]
        assert turns[0]["items"][0]["type"] == "userMessage"
        await run_turn(c, tid, "after")
        assert (await completed_turn(c))["status"] == "completed"
        assert not [m for m in c.seen if is_request(m)]
