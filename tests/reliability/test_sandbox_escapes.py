"""Writes outside the writable roots, through real turns against the mock model.

Covers, in ``read-only`` and ``workspace-write``: ``apply_patch`` calls that add, update,
delete or move files through ``..``, through symlinks pointing out of the workspace (a
directory link, a file link, a dangling link) and through absolute paths elsewhere never change
anything outside the roots when the approval policy is ``never``; with ``on-request`` they ask
first, a decline writes nothing and an accept does (so the paths really are writable by the
OS); a patch into the workspace's ``.git`` never applies either. These need no sandbox backend
and run everywhere. Under each backend that works here (bubblewrap, Landlock; each skipped,
naming why, when it does not): ``shell_command`` calls that write through the same routes, or
run from a ``workdir`` outside, or into the workspace's ``.git``, fail inside the sandbox, and
``sandboxEnforcement`` names the backend; with ``on-failure`` the server asks before running
them unconfined and a decline leaves nothing behind. In ``read-only`` the workspace itself is
not writable either. The workspace lives outside ``/tmp`` (a default writable root).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appserver.engine.tools import sandbox
from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, items_of, run_turn, start_thread
from tests.harness import WireClient, is_request, open_client
from tests.support import mock_model as mm

# Only the command tests need a sandbox backend: a patch's target paths are checked by the
# server itself, so the patch tests run everywhere.


def _backend_param(name: sandbox.Backend) -> Any:
    problem = sandbox.backend_problem(name)
    mark = pytest.mark.skipif(problem is not None, reason=f"{name} unusable here: {problem}")
    return pytest.param(name, marks=mark, id=name)


BACKENDS = [_backend_param("bubblewrap"), _backend_param("landlock")]

MODES = ["read-only", "workspace-write"]


@dataclass
class Layout:
    base: Path
    ws: Path
    outside: Path

    def snapshot(self) -> dict[str, bytes | str]:
        """Every entry under the base directory, with its content."""
        out: dict[str, bytes | str] = {}
        for root, dirs, files in os.walk(self.base):
            for name in dirs + files:
                path = Path(root) / name
                key = str(path.relative_to(self.base))
                if path.is_symlink():
                    out[key] = "-> " + os.readlink(path)
                elif path.is_file():
                    out[key] = path.read_bytes()
                else:
                    out[key] = "dir"
        return out


@pytest.fixture
def layout() -> Iterator[Layout]:
    # Not under /tmp: /tmp is itself a writable root in workspace-write.
    parent = "/var/tmp" if os.access("/var/tmp", os.W_OK) else None
    if parent is None:
        pytest.skip("no writable directory outside /tmp")
    base = Path(tempfile.mkdtemp(prefix="appserver-sandbox-", dir=parent)).resolve()
    ws, outside = base / "ws", base / "outside"
    ws.mkdir()
    outside.mkdir()
    (ws / ".git" / "hooks").mkdir(parents=True)
    (ws / ".git" / "config").write_text("[core]\n")
    (outside / "victim.txt").write_text("victim\n")
    (outside / "target.txt").write_text("target\n")
    (ws / "inside.txt").write_text("inside\n")
    (ws / "link").symlink_to(outside)
    (ws / "linkfile").symlink_to(outside / "target.txt")
    (ws / "dangling").symlink_to(outside / "created-through-dangling.txt")
    try:
        yield Layout(base, ws, outside)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _patch(body: str) -> str:
    return f"*** Begin Patch\n{body}*** End Patch\n"


def escaping_patches(lay: Layout) -> dict[str, str]:
    return {
        "dotdot add": _patch("*** Add File: ../outside/dotdot.txt\n+x\n"),
        "dir symlink add": _patch("*** Add File: link/through-link.txt\n+x\n"),
        "file symlink update": _patch("*** Update File: linkfile\n@@\n-target\n+changed\n"),
        "dangling symlink add": _patch("*** Add File: dangling\n+x\n"),
        "absolute add": _patch(f"*** Add File: {lay.outside}/absolute.txt\n+x\n"),
        "dotdot delete": _patch("*** Delete File: ../outside/victim.txt\n"),
        "move out": _patch(
            "*** Update File: inside.txt\n*** Move to: ../outside/moved.txt\n@@\n-inside\n+moved\n"
        ),
        "git hook": _patch("*** Add File: .git/hooks/pre-commit\n+#!/bin/sh\n"),
        "git config": _patch("*** Update File: .git/config\n@@\n [core]\n+fsmonitor = x\n"),
    }


def escaping_commands(lay: Layout) -> dict[str, dict[str, Any]]:
    return {
        "dotdot": {"command": "touch ../outside/cmd-dotdot"},
        "dir symlink": {"command": "touch link/cmd-link"},
        "file symlink": {"command": "echo changed > linkfile"},
        "absolute": {"command": f"touch {lay.outside}/cmd-absolute"},
        "delete": {"command": f"rm -f {lay.outside}/victim.txt"},
        "workdir outside": {"command": "touch cmd-workdir", "workdir": "../outside"},
        "home": {"command": "touch $HOME/.appserver-sandbox-escape-probe"},
        "git hook": {"command": "echo '#!/bin/sh' > .git/hooks/pre-commit"},
        "git config": {"command": "echo '[core] fsmonitor = x' >> .git/config"},
        "git swap": {"command": "mv .git .git-old"},
    }


async def _turn(c: WireClient, tid: str) -> dict[str, Any]:
    await run_turn(c, tid, "try it")
    return await completed_turn(c)


def _tool_outputs(model: Any) -> list[str]:
    # The last request carries the whole history, so every output exactly once.
    return [
        i["output"]
        for i in model.requests[-1].body["input"]
        if i.get("type") == "function_call_output"
    ]


@pytest.mark.parametrize("mode", MODES)
async def test_escaping_patches_never_apply(
    home: Path, model: Any, layout: Layout, mode: str
) -> None:
    write_config(home, model.base_url, approval="never", sandbox=mode)
    patches = escaping_patches(layout)
    if mode == "read-only":
        patches["inside add"] = _patch("*** Add File: new-inside.txt\n+x\n")
    for i, text in enumerate(patches.values()):
        model.add(
            mm.sse_function_call(f"call_{i}", "apply_patch", {"input": text}), mm.sse_text("ok")
        )
    before = layout.snapshot()
    async with open_client("in_process", home, env=ENV) as c:
        tid = await start_thread(c, layout.ws)
        for _ in patches:
            assert (await _turn(c, tid))["status"] == "completed"
        assert not [m for m in c.seen if is_request(m)]
        assert all(i["status"] != "completed" for i in items_of(c, "item/completed", "fileChange"))
    assert layout.snapshot() == before
    outputs = _tool_outputs(model)
    assert len(outputs) == len(patches)
    assert all(o.startswith("apply_patch failed") for o in outputs), outputs
    home_probe = Path.home() / ".appserver-sandbox-escape-probe"
    assert not home_probe.exists()


@pytest.mark.parametrize("mode", MODES)
async def test_escaping_patch_asks_first(home: Path, model: Any, layout: Layout, mode: str) -> None:
    write_config(home, model.base_url, approval="on-request", sandbox=mode)
    declined = escaping_patches(layout)
    accepted = _patch("*** Add File: ../outside/approved.txt\n+approved\n")
    for i, text in enumerate([*declined.values(), accepted]):
        model.add(
            mm.sse_function_call(f"call_{i}", "apply_patch", {"input": text}), mm.sse_text("ok")
        )
    before = layout.snapshot()
    async with open_client("in_process", home, env=ENV) as c:
        tid = await start_thread(c, layout.ws)
        for name in [*declined, "accepted"]:
            await run_turn(c, tid, name)
            msg = await c.wait_for(lambda m: is_request(m) or m.get("method") == "turn/completed")
            if is_request(msg):
                assert msg["method"] == "item/fileChange/requestApproval", name
                decision = "accept" if name == "accepted" else "decline"
                await c.send({"id": msg["id"], "result": {"decision": decision}})
                assert (await completed_turn(c))["status"] == "completed"
            else:
                # Refused while planning (e.g. a dangling link counts as an existing file).
                assert name != "accepted"
    after = layout.snapshot()
    assert after.pop("outside/approved.txt") == b"approved\n"
    assert after == before


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", MODES)
async def test_escaping_commands_fail_in_the_sandbox(
    home: Path, model: Any, layout: Layout, mode: str, backend: str
) -> None:
    write_config(home, model.base_url, approval="never", sandbox=mode)
    commands = escaping_commands(layout)
    if mode == "read-only":
        commands["inside"] = {"command": "touch cmd-inside"}
    # Under Landlock a workspace holding .git cannot get new top-level entries (see README),
    # so the control writes an existing file.
    control = {"command": "echo made > inside.txt && echo made"}
    for i, args in enumerate([*commands.values(), control]):
        model.add(mm.sse_function_call(f"call_{i}", "shell_command", args), mm.sse_text("ok"))
    before = layout.snapshot()
    env = {**ENV, "APPSERVER_SANDBOX_BACKEND": backend}
    async with open_client("in_process", home, env=env) as c:
        started = await c.call("thread/start", {"cwd": str(layout.ws)})
        assert started["sandboxEnforcement"] == backend
        tid = started["thread"]["id"]
        for _ in range(len(commands) + 1):
            assert (await _turn(c, tid))["status"] == "completed"
        assert not [m for m in c.seen if is_request(m)]
        items = items_of(c, "item/completed", "commandExecution")
    escaped = items[: len(commands)]
    assert all(i["exitCode"] != 0 for i in escaped), [
        (i["command"], i["cwd"], i["exitCode"], i["aggregatedOutput"]) for i in escaped
    ]
    after = layout.snapshot()
    if mode == "workspace-write":
        assert items[-1]["exitCode"] == 0  # the sandbox still lets the workspace be written
        assert after["ws/inside.txt"] == b"made\n"
        after["ws/inside.txt"] = before["ws/inside.txt"]
    else:
        assert items[-1]["exitCode"] != 0
    assert after == before
    assert not (Path.home() / ".appserver-sandbox-escape-probe").exists()


@pytest.mark.parametrize("backend", BACKENDS)
async def test_failed_command_asks_before_running_unconfined(
    home: Path, model: Any, layout: Layout, backend: str
) -> None:
    write_config(home, model.base_url, approval="on-failure", sandbox="workspace-write")
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": "touch ../outside/x"}),
        mm.sse_text("ok"),
    )
    before = layout.snapshot()
    async with open_client(
        "in_process", home, env={**ENV, "APPSERVER_SANDBOX_BACKEND": backend}
    ) as c:
        tid = await start_thread(c, layout.ws)
        await run_turn(c, tid, "try")
        req = await c.wait_for(is_request)
        assert req["method"] == "item/commandExecution/requestApproval"
        assert "unconfined" in req["params"]["reason"]
        assert layout.snapshot() == before  # the sandboxed attempt wrote nothing
        await c.send({"id": req["id"], "result": {"decision": "decline"}})
        assert (await completed_turn(c))["status"] == "completed"
    assert layout.snapshot() == before
