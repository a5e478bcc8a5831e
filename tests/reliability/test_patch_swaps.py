"""A patch's path changed between its check and its write, and paths no file can have.

Through real turns against the mock model (in-process server). The approval wait is the
window between the check and the write: the test answers ``item/fileChange/requestApproval``
only after replacing a workspace directory with a symbolic link to a directory outside the
roots (holding the same file contents, so only the no-follow walk can tell). Accepting must
write nothing outside: the ``fileChange`` item fails and the model is told why, and the turn
completes. Without a swap the same patch lands. Patch paths with a NUL byte, an over-long
component or an over-long path are refused while planning with ``apply_patch failed: invalid
path …`` (no item, the turn completes, never "internal error").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, items_of, run_turn, start_thread
from tests.harness import WireClient, is_request, open_client
from tests.support import mock_model as mm

PATCH = (
    "*** Begin Patch\n"
    "*** Update File: sub/a.txt\n@@\n-a\n+patched\n"
    "*** Add File: sub/new.txt\n+new\n"
    "*** End Patch\n"
)


@pytest.fixture
def base() -> Iterator[Path]:
    # Not under /tmp: /tmp is itself a writable root in workspace-write.
    if not os.access("/var/tmp", os.W_OK):
        pytest.skip("no writable directory outside /tmp")
    base = Path(tempfile.mkdtemp(prefix="appserver-swap-", dir="/var/tmp")).resolve()
    (base / "ws" / "sub").mkdir(parents=True)
    (base / "ws" / "sub" / "a.txt").write_text("a\n")
    (base / "outside").mkdir()
    (base / "outside" / "a.txt").write_text("a\n")
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def tool_outputs(model: Any) -> list[str]:
    return [
        i["output"]
        for i in model.requests[-1].body["input"]
        if i.get("type") == "function_call_output"
    ]


async def patch_turn(c: WireClient, tid: str, before_answer: Any = None) -> dict[str, Any]:
    await run_turn(c, tid, "patch it")
    ask = await c.wait_for(is_request)
    assert ask["method"] == "item/fileChange/requestApproval"
    if before_answer is not None:
        before_answer()
    await c.send({"id": ask["id"], "result": {"decision": "accept"}})
    return await completed_turn(c)


@pytest.mark.parametrize("swap", [False, True], ids=["no-swap", "dir-swapped-for-link"])
async def test_directory_swapped_for_a_link_during_the_approval(
    home: Path, model: Any, base: Path, swap: bool
) -> None:
    write_config(home, model.base_url, approval="untrusted", sandbox="workspace-write")
    model.add(mm.sse_function_call("call_1", "apply_patch", {"input": PATCH}), mm.sse_text("ok"))
    ws, outside = base / "ws", base / "outside"

    def swap_in_link() -> None:
        # What another thread's command in the same workspace could do meanwhile.
        (ws / "sub").rename(ws / "sub-moved")
        (ws / "sub").symlink_to(outside)

    async with open_client("in_process", home, env=ENV) as c:
        tid = await start_thread(c, ws)
        turn = await patch_turn(c, tid, swap_in_link if swap else None)
        assert turn["status"] == "completed"
        (item,) = items_of(c, "item/completed", "fileChange")
        assert not [m for m in c.seen if m.get("method") == "error"]
    (output,) = tool_outputs(model)
    if not swap:
        assert item["status"] == "completed", output
        assert (ws / "sub" / "a.txt").read_text() == "patched\n"
        assert (ws / "sub" / "new.txt").read_text() == "new\n"
        return
    assert item["status"] == "failed"
    assert output.startswith("apply_patch failed: "), output
    assert f"{ws}/sub is not a directory" in output
    # Nothing went through the link, and the moved directory was left alone too.
    assert sorted(os.listdir(outside)) == ["a.txt"]
    assert (outside / "a.txt").read_text() == "a\n"
    assert sorted(os.listdir(ws / "sub-moved")) == ["a.txt"]
    assert (ws / "sub-moved" / "a.txt").read_text() == "a\n"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("a\x00b.txt", "it contains a NUL byte"),
        ("x" * 300 + ".txt", "a component is longer than 255 bytes"),
        ("/".join(["d"] * 2100) + "/f.txt", "it is longer than 4095 bytes"),
    ],
    ids=["nul", "long-name", "long-path"],
)
async def test_a_path_no_file_can_have_is_refused_clearly(
    home: Path, model: Any, base: Path, path: str, why: str
) -> None:
    write_config(home, model.base_url, approval="never", sandbox="workspace-write")
    text = f"*** Begin Patch\n*** Add File: {path}\n+x\n*** End Patch\n"
    model.add(mm.sse_function_call("call_1", "apply_patch", {"input": text}), mm.sse_text("ok"))
    async with open_client("in_process", home, env=ENV) as c:
        tid = await start_thread(c, base / "ws")
        await run_turn(c, tid, "patch it")
        turn = await completed_turn(c)
        assert turn["status"] == "completed", turn
        assert not [m for m in c.seen if m.get("method") == "error"]
        assert not items_of(c, "item/started", "fileChange")
    (output,) = tool_outputs(model)
    assert output == f"apply_patch failed: invalid path {path!r}: {why}"
    assert sorted(os.listdir(base / "ws")) == ["sub"]
