"""Commands that must ask do ask: the bypasses of security issue 17, through real turns.

Policy ``untrusted`` with ``danger-full-access`` (the README's quick-start pair: nothing is
confined, so the approval question is the only guard). The mock model plays the attacker's
command; each test first shows that a known-safe command in the same workspace runs without
a question (so the question really comes from the command), then that the attack is asked
about and, declined, leaves no file behind. Covers: a ``#`` inside a word hiding a second
command (also behind an accepted ``["python3"]`` prefix), GNU sed's ``e`` command after the
first arguments, a command substitution run by ``${x@P}`` prompt expansion, and reading the
server's ``auth.json`` after ``account/login/start`` stored a key.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pytest

from appserver.engine.tools import shell
from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, items_of, next_request, run_turn, start_thread
from tests.harness import WireClient, is_request, open_client
from tests.support import mock_model as mm

TRANSPORT = "in_process"  # the decision is the engine's; the wire is covered elsewhere
APPROVAL = "item/commandExecution/requestApproval"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "notes.txt").write_text("hello\n")
    return ws


def shell_call(call_id: str, command: str) -> mm.Reply:
    return mm.sse_function_call(call_id, "shell_command", {"command": command})


def requests(c: WireClient) -> list[dict[str, Any]]:
    return [m for m in c.seen if is_request(m)]


async def safe_control(c: WireClient, tid: str) -> None:
    """The scripted `cat notes.txt` runs without a question."""
    await run_turn(c, tid, "control")
    assert (await completed_turn(c))["status"] == "completed"
    assert requests(c) == []
    [item] = items_of(c, "item/completed", "commandExecution")
    assert item["status"] == "completed" and item["aggregatedOutput"] == "hello\n"


def shown(command: str) -> str:
    """The approval's command: the shell invocation as run (`bash -c SCRIPT`)."""
    return shlex.join(shell.shell_argv(command))


async def asked_and_declined(c: WireClient, tid: str, command: str) -> None:
    await run_turn(c, tid, "attack")
    req = await next_request(c)
    assert req["method"] == APPROVAL and req["params"]["command"] == shown(command)
    await c.send({"id": req["id"], "result": {"decision": "decline"}})
    assert (await completed_turn(c))["status"] == "completed"
    assert items_of(c, "item/completed", "commandExecution")[-1]["status"] == "declined"


def attacks(marker: Path) -> dict[str, str]:
    return {
        "hash inside a word": f"echo harmless#; touch {marker}",
        "sed e command": f"sed -n 1p -e '1e touch {marker}' notes.txt",
        "prompt expansion": f"echo ${{x:=$'\\x24(touch {marker})'}} ${{x@P}}",
    }


@pytest.mark.parametrize("name", ["hash inside a word", "sed e command", "prompt expansion"])
async def test_smuggled_command_is_asked_about(
    name: str, home: Path, workspace: Path, model: Any
) -> None:
    write_config(home, model.base_url, approval="untrusted", sandbox="danger-full-access")
    marker = workspace.parent / "pwned"
    command = attacks(marker)[name]
    model.add(
        shell_call("call_0", "cat notes.txt"),
        mm.sse_text("read"),
        shell_call("call_1", command),
        mm.sse_text("tried"),
    )
    async with open_client(TRANSPORT, home, env=ENV) as c:
        tid = await start_thread(c, workspace)
        await safe_control(c, tid)
        await asked_and_declined(c, tid, command)
    assert not marker.exists()


async def test_accepted_prefix_does_not_cover_a_hash_smuggled_command(
    home: Path, workspace: Path, model: Any
) -> None:
    write_config(home, model.base_url, approval="untrusted", sandbox="danger-full-access")
    marker = workspace.parent / "pwned"
    smuggled = f"python3 -V#; touch {marker}"
    model.add(
        shell_call("call_1", "python3 -V"),
        mm.sse_text("one"),
        shell_call("call_2", "python3 -V"),
        mm.sse_text("two"),
        shell_call("call_3", smuggled),
        mm.sse_text("three"),
    )
    async with open_client(TRANSPORT, home, env=ENV) as c:
        tid = await start_thread(c, workspace)
        await run_turn(c, tid, "first")
        req = await next_request(c)
        assert req["params"]["proposedExecpolicyAmendment"] == ["python3", "-V"]
        decision = {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": ["python3"]}}
        await c.send({"id": req["id"], "result": {"decision": decision}})
        assert (await completed_turn(c))["status"] == "completed"
        await run_turn(c, tid, "second")  # covered by the prefix: no question
        assert (await completed_turn(c))["status"] == "completed"
        assert len(requests(c)) == 1
        await asked_and_declined(c, tid, smuggled)
        asked = requests(c)[-1]
        assert asked["params"]["proposedExecpolicyAmendment"] is None
    assert not marker.exists()


@pytest.mark.parametrize("spelling", ["literal", "variable"])
async def test_reading_the_stored_key_is_asked_about(
    spelling: str, home: Path, workspace: Path, model: Any
) -> None:
    write_config(home, model.base_url, approval="untrusted", sandbox="danger-full-access")
    key = "sk-stored-by-login-0123456789"
    command = f"cat {home}/auth.json" if spelling == "literal" else "cat $APPSERVER_HOME/auth.json"
    model.add(
        shell_call("call_0", "cat notes.txt"),
        mm.sse_text("read"),
        shell_call("call_1", command),
        mm.sse_text("tried"),
    )
    env = {**ENV, "APPSERVER_HOME": str(home)}
    async with open_client(TRANSPORT, home, env=env) as c:
        await c.call("account/login/start", {"type": "apiKey", "apiKey": key})
        assert key in (home / "auth.json").read_text()
        tid = await start_thread(c, workspace)
        await safe_control(c, tid)
        await asked_and_declined(c, tid, command)
        assert not any(key in str(m) for m in c.seen)
    assert all(key not in str(r.body) for r in model.requests)
