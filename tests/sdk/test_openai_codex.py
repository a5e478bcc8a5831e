"""The official Python SDK (``openai-codex`` 0.163.0) drives our server unchanged over stdio.

The SDK starts ``python -m appserver serve --stdio`` through ``CodexConfig.launch_args_override``
(installed without its bundled binary). Covers: a "Say hello." turn through the high-level API
with the offline scripted provider; the SDK's version checks (initialize metadata, and the
calls that make the SDK require a runtime ≥ 0.151.0); streamed deltas through a turn handle's
event stream; an approval reaching the SDK's approval handler, accepted and declined; thread
list, read, fork, archive, unarchive and name set; turn interrupt and steer (the mock model
holds its stream so both land mid-turn, with no sleeps). Every SDK call runs under
``bounded`` (a worker thread and a deadline); the SDK's traffic goes to the wire recorder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

openai_codex = pytest.importorskip(
    "openai_codex", reason="openai-codex 0.163.0 is not installed (.ci/run installs it --no-deps)"
)

from openai_codex import Codex  # noqa: E402
from openai_codex._initialize_metadata import _split_user_agent  # noqa: E402
from openai_codex._runtime_requirements import require_runtime_version  # noqa: E402
from openai_codex.client import CodexClient  # noqa: E402
from openai_codex.generated.v2_all import (  # noqa: E402
    AgentMessageDeltaNotification,
    AgentMessageThreadItem,
    CommandExecutionThreadItem,
    TurnStatus,
    UserMessageThreadItem,
)
from openai_codex.models import UnknownNotification  # noqa: E402

from tests.engine.conftest import ENV, write_config  # noqa: E402
from tests.sdk.conftest import bounded, sdk_config  # noqa: E402
from tests.support import mock_model as mm  # noqa: E402
from tests.support.mock_model import MockModelServer  # noqa: E402


def kinds(items: list[Any]) -> list[type]:
    return [type(getattr(item, "root", item)) for item in items]


def test_say_hello_through_the_high_level_api(home: Path, tmp_path: Path) -> None:
    """Offline, as in the README's quick start: the built-in scripted provider."""
    script = tmp_path / "script.yaml"
    script.write_text('- chunks: ["Hello", " from", " the script."]\n', encoding="utf-8")

    def flow() -> Any:
        with Codex(sdk_config(home, env={"APPSERVER_SCRIPT": str(script)})) as codex:
            return codex.thread_start(cwd=str(tmp_path)).run("Say hello.")

    result = bounded(flow, home)
    assert result.final_response == "Hello from the script."
    assert result.status == TurnStatus.completed and result.error is None
    assert kinds(result.items) == [UserMessageThreadItem, AgentMessageThreadItem]
    assert result.usage is not None and result.usage.total.total_tokens > 0


def test_the_sdk_version_checks_pass(home: Path, model: MockModelServer) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("first"), mm.sse_text("second"))

    def flow() -> tuple[Any, str, str, str]:
        with Codex(sdk_config(home, env=ENV)) as codex:
            thread = codex.thread_start()
            # ``source`` (turnTrigger) and ``include_turns`` (excludeTurns) make the SDK
            # require a runtime >= 0.151.0 from what initialize reported.
            first = thread.run("one", source="sdk-test")
            fork = codex.thread_fork(thread.id, include_turns=False)
            resumed = codex.thread_resume(thread.id, include_turns=False)
            second = resumed.run("two")
            return codex.metadata, first.final_response, fork.id, str(second.final_response)

    metadata, first, fork_id, second = bounded(flow, home)
    assert metadata.userAgent and metadata.serverInfo is not None
    name, version = _split_user_agent(metadata.userAgent)
    assert name and version
    require_runtime_version(version.split()[0])
    require_runtime_version(metadata.serverInfo.version.split()[0])
    assert (first, second) == ("first", "second") and fork_id
    assert model.requests[0].body["input"][-1]["content"][0]["text"] == "one"


def test_streamed_deltas_through_the_event_api(home: Path, model: MockModelServer) -> None:
    write_config(home, model.base_url)
    chunks = ["Hello ", "from ", "the mock."]
    model.add(mm.sse_text("".join(chunks), chunks=chunks))

    def flow() -> list[Any]:
        with Codex(sdk_config(home, env=ENV)) as codex:
            return list(codex.thread_start().turn("Say hello.").stream())

    events = bounded(flow, home)
    deltas = [e.payload for e in events if e.method == "item/agentMessage/delta"]
    assert all(isinstance(d, AgentMessageDeltaNotification) for d in deltas)
    assert [d.delta for d in deltas] == chunks
    assert events[-1].method == "turn/completed"
    methods = [e.method for e in events]
    assert methods.index("turn/started") < methods.index("item/agentMessage/delta")
    # The SDK parsed every notification into its schema model (unparseable ones would come
    # back as UnknownNotification).
    unknown = [e.method for e in events if isinstance(e.payload, UnknownNotification)]
    assert unknown == []


@pytest.mark.parametrize("decision", ["accept", "decline"])
def test_approval_reaches_the_sdk_handler(
    decision: str, home: Path, tmp_path: Path, model: MockModelServer
) -> None:
    write_config(home, model.base_url, approval="untrusted")
    marker = tmp_path / "marker"
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}),
        mm.sse_text("Command finished."),
    )
    asked: list[tuple[str, dict[str, Any] | None]] = []

    def handler(method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        asked.append((method, params))
        return {"decision": decision}

    def flow() -> tuple[str, Any, Any]:
        with CodexClient(sdk_config(home, env=ENV), approval_handler=handler) as client:
            client.initialize()
            thread_id = client.thread_start({"cwd": str(tmp_path)}).thread.id
            turn = client.turn_start(thread_id, "RUN_SHELL").turn
            done = client.wait_for_turn_completed(turn.id)
            return thread_id, done, client.thread_read(thread_id, include_turns=True)

    thread_id, done, read = bounded(flow, home)
    assert [m for m, _ in asked] == ["item/commandExecution/requestApproval"]
    params = asked[0][1]
    assert params is not None
    assert params["threadId"] == thread_id and params["itemId"] == "call_1"
    assert done.turn.status == TurnStatus.completed
    assert marker.exists() == (decision == "accept")
    commands = [
        item.root
        for item in read.thread.turns[-1].items
        if isinstance(item.root, CommandExecutionThreadItem)
    ]
    assert [c.status.value for c in commands] == [
        "completed" if decision == "accept" else "declined"
    ]


def test_thread_list_read_fork_archive_unarchive_and_name(
    home: Path, model: MockModelServer
) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("remembered"))

    def flow() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        with Codex(sdk_config(home, env=ENV)) as codex:
            thread = codex.thread_start()
            thread.run("remember this")
            thread.set_name("greeting")
            seen["read"] = thread.read(include_turns=True).thread
            fork = codex.thread_fork(thread.id)
            seen["fork"] = fork.read(include_turns=True).thread
            seen["listed"] = codex.thread_list().data
            codex.thread_archive(thread.id)
            seen["after_archive"] = [t.id for t in codex.thread_list().data]
            seen["archived"] = [t.id for t in codex.thread_list(archived=True).data]
            seen["unarchived"] = codex.thread_unarchive(thread.id).id
            seen["after_unarchive"] = [t.id for t in codex.thread_list().data]
            seen["id"] = thread.id
        return seen

    seen = bounded(flow, home)
    tid, read, fork = seen["id"], seen["read"], seen["fork"]
    assert read.name == "greeting" and read.preview == "remember this"
    assert [t.status for t in read.turns] == [TurnStatus.completed]
    assert kinds(read.turns[0].items) == [UserMessageThreadItem, AgentMessageThreadItem]
    assert fork.id != tid and fork.forked_from_id == tid
    assert [kinds(t.items) for t in fork.turns] == [kinds(read.turns[0].items)]
    listed = {t.id: t for t in seen["listed"]}
    assert set(listed) == {tid, fork.id} and listed[tid].name == "greeting"
    assert tid not in seen["after_archive"] and fork.id in seen["after_archive"]
    assert seen["archived"] == [tid]
    assert seen["unarchived"] == tid and tid in seen["after_unarchive"]


def test_turn_interrupt(home: Path, model: MockModelServer) -> None:
    write_config(home, model.base_url)
    reply = mm.sse_text("never finished", chunks=["never ", "finished"])
    hold = reply.hold_before(3)  # after the first delta
    model.add(reply)

    def flow() -> Any:
        with Codex(sdk_config(home, env=ENV)) as codex:
            turn = codex.thread_start().turn("Work slowly.")
            assert hold.reached.wait(30)
            turn.interrupt()
            return turn.run()

    result = bounded(flow, home)
    assert result.status == TurnStatus.interrupted


def test_turn_steer(home: Path, model: MockModelServer) -> None:
    write_config(home, model.base_url)
    first = mm.sse_text("first answer")
    hold = first.hold_before(1)
    model.add(first, mm.sse_text("steered answer"))

    def flow() -> tuple[str, Any]:
        with Codex(sdk_config(home, env=ENV)) as codex:
            turn = codex.thread_start().turn("start")
            assert hold.reached.wait(30)
            steered = turn.steer("also this")
            hold.release.set()
            return steered.turn_id == turn.id, turn.run()

    same_turn, result = bounded(flow, home)
    assert same_turn
    assert result.status == TurnStatus.completed and result.final_response == "steered answer"
    texts = [
        i["content"][0]["text"] for i in model.requests[-1].body["input"] if i.get("role") == "user"
    ]
    assert texts == ["start", "also this"]
