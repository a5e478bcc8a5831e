"""The fuzzers' ``HostGuard``: a fuzzed host request can only reach a scratch directory and
runs nothing (hypothesis draws ``"/tmp"``, ``"fs/remove"`` and test commands from the
project's own constants, and the fuzzed connections are the user's, unrestricted)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reliability.fuzz_support import HostGuard


def test_paths_move_beneath_the_scratch_directory(tmp_path: Path) -> None:
    guard = HostGuard(tmp_path / "scratch")
    scratch = str((tmp_path / "scratch").resolve())
    assert guard.params("fs/remove", {"path": "/tmp"}) == {"path": scratch + "/tmp"}
    assert guard.params("fs/remove", {"path": "/../../etc/passwd"}) == {
        "path": scratch + "/etc/passwd"
    }
    assert guard.params("fs/copy", {"source_path": "/a", "destinationPath": "/b", "x": "/c"}) == {
        "source_path": scratch + "/a",
        "destinationPath": scratch + "/b",
        "x": "/c",
    }
    assert guard.params("fuzzyFileSearch", {"roots": ["/", 1, "rel"], "query": "/"}) == {
        "roots": [scratch + "/", 1, "rel"],
        "query": "/",
    }
    # Relative paths and other types stay as fuzzed: the server refuses them.
    assert guard.params("fs/readFile", {"path": "etc"}) == {"path": "etc"}
    assert guard.params("fs/readFile", {"path": None}) == {"path": None}
    # Other methods are not touched.
    assert guard.params("thread/start", {"cwd": "/"}) == {"cwd": "/"}


def test_commands_are_made_inert(tmp_path: Path) -> None:
    guard = HostGuard(tmp_path)
    shell = guard.params("thread/shellCommand", {"threadId": "t", "command": "rm -rf $HOME"})
    assert shell == {"threadId": "t", "command": ": 'rm -rf $HOME'"}
    assert guard.params("thread/shellCommand", {"command": " "}) == {"command": " "}
    exec_ = guard.params("command/exec", {"command": ["rm", "-rf", "/"], "cwd": "/"})
    assert exec_["command"] == ["true", "rm", "-rf", "/"]
    assert exec_["cwd"] == str(tmp_path.resolve()) + "/"
    assert guard.params("command/exec", {"command": []}) == {"command": []}


def test_raw_payloads_are_rewritten_per_message(tmp_path: Path) -> None:
    guard = HostGuard(tmp_path)
    host = json.dumps({"id": 1, "method": "fs/remove", "params": {"path": "/tmp"}}).encode()
    other = json.dumps({"id": 2, "method": "fs/remove", "params": [1]}).encode()
    out = guard.payload("lines", host + b"\r\n" + other + b"\nnot json")
    first, second, third = out.split(b"\n")
    assert json.loads(first[:-1])["params"] == {"path": str(tmp_path.resolve()) + "/tmp"}
    assert first.endswith(b"\r")
    assert (second, third) == (other, b"not json")
    (message,) = [guard.payload("websocket", host)]
    assert json.loads(message)["params"]["path"].startswith(str(tmp_path.resolve()))
