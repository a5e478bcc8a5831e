"""``appserver chat`` never hands the terminal a control character from the other side.

Through the real CLI (a subprocess) against a served turn of the scripted model, whose text,
reasoning, command, command output and patch path carry the attacks from the security review:
a ``touch`` hidden behind ``\\r ESC[2K ESC[1m ls -la``, OSC 0 (window title), OSC 52
(clipboard), ``ESC[2J`` (clear screen) split across two streamed deltas, the one-byte C1 CSI,
a NUL and a bidi override. stdout and stderr are read as bytes (what a terminal would get; no
styling on a pipe, so any ESC at all would be an injected one): none of those bytes appear,
the visible escapes do, and the approval prompt shows the hidden ``touch`` — which is what
accepting runs. With ``--json`` the wire lines keep the exact strings (JSON escapes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.chat.test_chat_cli import APPROVAL_PROMPT, TIMEOUT, UNTRUSTED, chat_env, wire_entries

SPOOF = "\r\x1b[2K\x1b[1mls -la"
TITLE = "\x1b]0;pwned\x07"
CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
# Raw bytes that must never reach the terminal (the C1 and bidi characters UTF-8 encoded).
RAW = [b"\x1b", b"\x07", b"\r", b"\x00", b"\xc2\x9b", b"\xe2\x80\xae", b"\xe2\x80\xa8"]


def hostile_script(path: Path, marker: Path, work: Path) -> Path:
    # The command prints a title, clipboard and clear-screen sequence, then touches the
    # marker; the comment hides that behind a repainted "ls -la".
    printf = r"printf '\033]0;out-title\007\033]52;c;eA==\007\033[2J\342\200\256\302\233x\r\n'"
    command = f"{printf}; touch {marker} #{SPOOF}"
    patch = f"*** Begin Patch\n*** Add File: {work}/evil{TITLE}\u202e.txt\n+x\n*** End Patch\n"
    replies: list[Any] = [
        [
            {"reasoning": f"thinking{TITLE} hard"},
            # ESC and the rest of its sequence arrive in separate deltas.
            {"chunks": ["Looking \x1b", "[2J", f" {CLIPBOARD} \u202eevil\x9b31m \x00 done"]},
            {"shell": command},
        ],
        {"patch": patch},
        f"Finished{TITLE}\r\x1b[1m.",
    ]
    path.write_text(json.dumps(replies), encoding="utf-8")
    return path


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, Path]:
    work = tmp_path / "work"
    work.mkdir()
    marker = tmp_path / "marker"
    return hostile_script(tmp_path / "hostile.json", marker, work), marker, work


def run_chat(home: Path, script: Path, work: Path, *extra: str, stdin: bytes) -> Any:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "appserver",
            "chat",
            "--home",
            str(home),
            "--cwd",
            str(work),
            *UNTRUSTED,
            *extra,
        ],
        input=stdin,
        capture_output=True,
        env=chat_env(script),
        timeout=TIMEOUT,
    )


def test_no_control_character_reaches_the_terminal(
    home: Path, setup: tuple[Path, Path, Path]
) -> None:
    script, marker, work = setup
    proc = run_chat(home, script, work, stdin=b"go\na\nd\n")
    out, err = proc.stdout, proc.stderr
    assert proc.returncode == 0, err
    assert b"Traceback" not in err
    for raw in RAW:
        assert raw not in out, (raw, out)
        assert raw not in err, (raw, err)
    text_out, text_err = out.decode(), err.decode()
    # The agent's words, split escape sequence included, arrive escaped on stdout.
    assert "Looking \\x1b[2J \\x1b]52;c;cm0gLXJmIH4=\\x07 \\u202eevil\\x9b31m \\x00 done" in (
        text_out
    )
    assert "Finished\\x1b]0;pwned\\x07\\r\\x1b[1m." in text_out
    assert "thinking\\x1b]0;pwned\\x07 hard" in text_err  # reasoning
    assert "\\x1b]0;out-title\\x07\\x1b]52;c;eA==\\x07\\x1b[2J\\u202e\\x9bx" in text_err  # output
    # The approval shows the touch that "ls -la" was painted over, and accepting ran it.
    (prompt,) = [line for line in text_err.splitlines() if line.startswith("approve running:")]
    assert f"; touch {marker} #\\r\\x1b[2K\\x1b[1mls -la" in prompt
    assert "\\\\033]0;" in prompt  # the printf's own backslashes, doubled
    assert "note: shown with escapes" in text_err
    assert APPROVAL_PROMPT in text_err
    assert marker.exists()
    # The patch path: escaped in the item line and the approval; declined, nothing written.
    assert f"approve the patch to {work}/evil\\x1b]0;pwned\\x07\\u202e.txt" in text_err
    assert "→ decline" in text_err and os.listdir(work) == []


def test_json_mode_keeps_exact_strings_and_no_raw_controls(
    home: Path, setup: tuple[Path, Path, Path]
) -> None:
    script, marker, work = setup
    proc = run_chat(home, script, work, "--json", stdin=b"go\na\nd\n")
    assert proc.returncode == 0, proc.stderr
    for raw in RAW:
        assert raw not in proc.stdout, raw
        assert raw not in proc.stderr, raw
    entries = wire_entries(proc.stdout.decode())
    deltas = [
        e["msg"]["params"]["delta"]
        for e in entries
        if e["msg"].get("method") == "item/agentMessage/delta"
    ]
    assert "".join(deltas).startswith("Looking \x1b[2J " + CLIPBOARD + " \u202eevil\x9b31m")
    (ask,) = [
        e["msg"]
        for e in entries
        if e["msg"].get("method") == "item/commandExecution/requestApproval"
    ]
    # The command is shown as run (`bash -c SCRIPT`): the script holds the spoof verbatim.
    assert f"touch {marker} #{SPOOF}" in ask["params"]["command"]
    assert marker.exists()
