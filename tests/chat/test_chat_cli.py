"""``appserver chat`` through its real CLI, as a subprocess.

Covers: ``-p`` against the default in-process server (echo mode), approvals in ``-p`` mode
(``--approve accept`` runs the command, ``--approve decline`` and the no-terminal default do
not), an interactive session on piped stdin (two prompts, an approval answered ``a``; an
approval answered ``c``, which interrupts the turn without running the command), the same on
a pseudo-terminal, ``--server-cmd`` (stdio) and ``--ws`` (with a token; a bad token and a
refused connection are one line and exit 2), ``--json`` wire lines, failing turns (exit 1,
error on stderr), Ctrl-C interrupting a ``-p`` turn, the agent's text reaching stdout piece by
piece while the model is still streaming (a mock model server that holds its stream between
deltas, in lockstep with the test), and that ``serve`` never imports the client package.
Every ``--json`` run's wire lines are replayed through the suite's wire recorder, so what the
server sent the chat client is schema-checked too. Every wait is bounded by a subprocess
timeout or a deadline; nothing sleeps.
"""

from __future__ import annotations

import json
import os
import queue
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.config import ENV, write_config
from tests.support.mock_model import Hold, MockModelServer, sse_text
from tests.support.wire_recorder import RECORDER

TIMEOUT = 60.0
APPROVAL_PROMPT = "[a]ccept / accept for [s]ession / [d]ecline / [c]ancel"
UNTRUSTED = ["-c", 'approval_policy="untrusted"', "-c", 'sandbox_mode="danger-full-access"']
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def chat_env(script: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("OPENAI_API_KEY", "APPSERVER_SCRIPT", "APPSERVER_HOME", "NO_COLOR"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    if script is not None:
        env["APPSERVER_SCRIPT"] = str(script)
    return env


def chat(
    *args: str,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "appserver", "chat", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env or chat_env(),
        timeout=TIMEOUT,
    )


class ChatConnection:
    """The wire recorder's identity for one chat process's connection."""


def wire_entries(stdout: str) -> list[dict[str, Any]]:
    """The ``--json`` lines of a chat run, replayed through the wire recorder (c2s as what the
    client sent, s2c as what the server emitted, which the recorder validates)."""
    entries = [json.loads(line) for line in stdout.splitlines()]
    replay_to_recorder(entries)
    return entries


def replay_to_recorder(entries: list[dict[str, Any]]) -> None:
    conn = ChatConnection()
    for entry in entries:
        if entry["dir"] == "c2s":
            RECORDER.sent(conn, entry["msg"])
        else:
            RECORDER.received(conn, entry["msg"])


def assert_clean(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout, proc.stdout


def shell_script(path: Path, marker: Path) -> Path:
    """Turn 1: text, a shell step touching ``marker``, then text; turn 2: one text reply."""
    command = json.dumps(f"touch {shlex.quote(str(marker))}")
    path.write_text(
        f"- - text: Running it.\n  - shell: {command}\n- Done first.\n- Second answer.\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "marker"


@pytest.fixture
def script(tmp_path: Path, marker: Path) -> Path:
    return shell_script(tmp_path / "script.yaml", marker)


# -- -p ---------------------------------------------------------------------------------------


def test_one_shot_in_process_echo(home: Path) -> None:
    proc = chat("-p", "Say hello.", "--home", str(home))
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Echo: Say hello.\n"
    assert "scripted provider" in proc.stderr  # the configWarning, shown as a warning


def test_one_shot_approve_accept_runs_the_command(home: Path, script: Path, marker: Path) -> None:
    proc = chat(
        "-p", "go", "--home", str(home), *UNTRUSTED, "--approve", "accept", env=chat_env(script)
    )
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()
    assert proc.stdout == "Done first.\n"  # only the final agent message on stdout
    assert "Running it." in proc.stderr and "→ accept" in proc.stderr


@pytest.mark.parametrize("approve", [["--approve", "decline"], []], ids=["decline", "default"])
def test_one_shot_decline_does_not_run(
    home: Path, script: Path, marker: Path, approve: list[str]
) -> None:
    proc = chat("-p", "go", "--home", str(home), *UNTRUSTED, *approve, env=chat_env(script))
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert "→ decline" in proc.stderr and "(declined)" in proc.stderr
    assert proc.stdout == "Done first.\n"


def test_failing_turn_exits_1_with_the_error(home: Path) -> None:
    proc = chat("-p", "hi", "--home", str(home), "-c", 'model_provider="openai"')
    assert_clean(proc)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert "error:" in proc.stderr and "OPENAI_API_KEY" in proc.stderr


def test_unknown_provider_exits_1(home: Path) -> None:
    proc = chat("-p", "hi", "--home", str(home), "-c", 'model_provider="nosuch"')
    assert_clean(proc)
    assert proc.returncode == 1
    assert "nosuch" in proc.stderr


def test_json_prints_every_wire_message(home: Path) -> None:
    proc = chat("-p", "Say hello.", "--json", "--home", str(home))
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    lines = wire_entries(proc.stdout)
    assert lines and all(set(entry) == {"dir", "msg"} for entry in lines)
    assert lines[0] == {
        "dir": "c2s",
        "msg": {"id": 1, "method": "initialize", "params": lines[0]["msg"]["params"]},
    }
    s2c = [e["msg"] for e in lines if e["dir"] == "s2c"]
    c2s = [e["msg"] for e in lines if e["dir"] == "c2s"]
    assert [m.get("method") for m in c2s][:4] == [
        "initialize",
        "initialized",
        "thread/start",
        "turn/start",
    ]
    assert any(m.get("id") == 1 and "result" in m for m in s2c)
    completed = [m for m in s2c if m.get("method") == "turn/completed"]
    assert completed and completed[0]["params"]["turn"]["status"] == "completed"
    # The agent's text moved to stderr so stdout stays JSON.
    assert "Echo: Say hello." in proc.stderr


def test_ctrl_c_interrupts_a_one_shot_turn(home: Path, tmp_path: Path) -> None:
    script = tmp_path / "slow.yaml"
    script.write_text("- [{pause_ms: 60000}, {text: never}]\n", encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "appserver", "chat", "-p", "wait", "--json", "--home", str(home)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=chat_env(script),
    )
    try:
        wire = _JsonLines(proc)
        wire.until(lambda m: m.get("method") == "turn/started")  # the turn is running
        proc.send_signal(signal.SIGINT)
        wire.until_eof()
        proc.wait(TIMEOUT)
        err = wire.stderr()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
    assert proc.returncode == 1
    assert "turn interrupted" in err and "Traceback" not in err
    replay_to_recorder(wire.entries)
    s2c = [e["msg"] for e in wire.entries if e["dir"] == "s2c"]
    completed = [m for m in s2c if m.get("method") == "turn/completed"]
    assert [m["params"]["turn"]["status"] for m in completed] == ["interrupted"]


# -- interactive --------------------------------------------------------------------------------


def test_interactive_piped_two_prompts_and_an_approval(
    home: Path, script: Path, marker: Path
) -> None:
    proc = chat("--home", str(home), *UNTRUSTED, env=chat_env(script), stdin="go\na\nagain\n")
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert marker.exists()
    assert proc.stdout.splitlines() == ["Running it.", "Done first.", "Second answer."]
    assert APPROVAL_PROMPT in proc.stderr and "→ accept" in proc.stderr
    assert "> go" in proc.stderr and "> again" in proc.stderr


def test_interactive_quit_and_bad_answers(home: Path, script: Path, marker: Path) -> None:
    proc = chat(
        "--home", str(home), *UNTRUSTED, env=chat_env(script), stdin="go\nwhat?\nd\n/quit\nx\n"
    )
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert "answer a, s, d or c" in proc.stderr and "→ decline" in proc.stderr
    assert "Second answer." not in proc.stdout  # /quit came first


def test_interactive_cancel_interrupts_the_turn(home: Path, script: Path, marker: Path) -> None:
    """``c`` answers ``cancel``: decline and interrupt the turn (spec §3.15). The command does
    not run, the turn ends ``interrupted`` without asking the model again, and the session
    goes on with the next prompt."""
    proc = chat(
        "--home", str(home), *UNTRUSTED, "--json", env=chat_env(script), stdin="go\nc\nagain\n"
    )
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert not marker.exists()
    assert "→ cancel" in proc.stderr and "turn interrupted" in proc.stderr
    entries = wire_entries(proc.stdout)
    msgs = [(e["dir"], e["msg"]) for e in entries]
    (ask,) = [m for d, m in msgs if m.get("method") == "item/commandExecution/requestApproval"]
    answer = ("c2s", {"id": ask["id"], "result": {"decision": "cancel"}})
    assert answer in msgs
    ends = [
        (i, m["params"]["turn"])
        for i, (_, m) in enumerate(msgs)
        if m.get("method") == "turn/completed"
    ]
    assert [turn["status"] for _, turn in ends] == ["interrupted", "completed"]
    assert msgs.index(answer) < ends[0][0]  # the answer ended the turn

    def items(turn_id: str) -> list[dict[str, Any]]:
        return [
            m["params"]["item"]
            for d, m in msgs
            if d == "s2c"
            and m.get("method") == "item/completed"
            and m["params"].get("turnId") == turn_id
        ]

    first, second = items(ends[0][1]["id"]), items(ends[1][1]["id"])
    assert [i["status"] for i in first if i["type"] == "commandExecution"] == ["declined"]
    assert [i["text"] for i in first if i["type"] == "agentMessage"] == ["Running it."]
    # The cancelled turn made no further model call: the script's next reply answered the
    # next prompt instead.
    assert [i["text"] for i in second if i["type"] == "agentMessage"] == ["Done first."]


def test_interactive_patch_approval_for_session(home: Path, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    patch = "*** Begin Patch\n*** Add File: new.txt\n+hello\n*** End Patch\n"
    script = tmp_path / "patch.yaml"
    script.write_text(f"- patch: {json.dumps(patch)}\n- Patched.\n", encoding="utf-8")
    proc = chat(
        "--home",
        str(home),
        "--cwd",
        str(work),
        "--approval-policy",
        "untrusted",
        "--sandbox",
        "workspace-write",
        env=chat_env(script),
        stdin="edit it\ns\n",
    )
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert (work / "new.txt").read_text(encoding="utf-8") == "hello\n"
    assert f"approve the patch to {work / 'new.txt'}" in proc.stderr
    assert "→ acceptForSession" in proc.stderr and "(patch completed)" in proc.stderr
    assert proc.stdout == "Patched.\n"


def test_interactive_in_a_pseudo_terminal(home: Path, script: Path, marker: Path) -> None:
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "appserver", "chat", "--home", str(home), *UNTRUSTED],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=chat_env(script),
        close_fds=True,
    )
    os.close(slave)
    screen = _Screen(master)
    try:
        screen.wait_for("/quit or end of input")
        os.write(master, b"go\n")
        screen.wait_for(APPROVAL_PROMPT)
        assert not marker.exists()
        os.write(master, b"a\n")
        screen.wait_for("Done first.")
        assert marker.exists()
        os.write(master, b"/quit\n")
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        os.close(master)
    assert "Traceback" not in screen.text
    assert "\x1b[" in screen.raw  # styled output on a terminal


def test_one_shot_asks_on_a_terminal(home: Path, script: Path, marker: Path) -> None:
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "appserver", "chat", "-p", "go", "--home", str(home), *UNTRUSTED],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=chat_env(script),
        close_fds=True,
    )
    os.close(slave)
    screen = _Screen(master)
    try:
        screen.wait_for(APPROVAL_PROMPT)
        os.write(master, b"d\n")
        screen.wait_for("Done first.")
        assert proc.wait(TIMEOUT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        os.close(master)
    assert not marker.exists()
    assert "→ decline" in screen.text and "Traceback" not in screen.text


# -- streaming ----------------------------------------------------------------------------------

PIECES = ["Hel", "lo, str", "eaming ", "world!"]


@pytest.fixture
def streaming_model(home: Path) -> Iterator[list[Hold]]:
    """A mock model (real HTTP) whose one reply streams ``PIECES`` as separate deltas and
    pauses before each delta after the first and before the message ends, until the test
    releases it; ``home``'s config points the chat's in-process server at it."""
    reply = sse_text("".join(PIECES), chunks=PIECES)
    # SSE events: 0 created, 1 item added, 2-5 the deltas, 6 item done, 7 completed.
    holds = [reply.hold_before(index) for index in (3, 4, 5, 6)]
    with MockModelServer([reply], hold_timeout=TIMEOUT) as server:
        write_config(home, server.base_url, approval=None, sandbox=None)
        yield holds


def mock_env() -> dict[str, str]:
    return {**chat_env(), **ENV}


def test_agent_text_streams_to_stdout_piece_by_piece(
    home: Path, streaming_model: list[Hold]
) -> None:
    """Each delta is on stdout while the model has not even sent the next one."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "appserver", "chat", "--home", str(home)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=mock_env(),
    )
    assert proc.stdin is not None and proc.stdout is not None
    err = _lines_of(proc.stderr)  # drained aside so the child never blocks on it
    out = _Screen(proc.stdout.fileno())
    try:
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        shown = ""
        for piece, hold in zip(PIECES, streaming_model, strict=True):
            shown += piece
            out.wait_for(shown)
            # The model is paused before its next piece (or before ending the message).
            assert hold.reached.wait(TIMEOUT), "the model never got to its next piece"
            assert out.text == shown
            hold.release.set()
        out.wait_for(shown + "\n")
        proc.stdin.close()
        assert proc.wait(TIMEOUT) == 0, _drain(err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
    assert out.text == "".join(PIECES) + "\n"
    assert "Traceback" not in _drain(err)


def test_json_delta_lines_arrive_while_the_model_streams(
    home: Path, streaming_model: list[Hold]
) -> None:
    """With ``--json``, each ``item/agentMessage/delta`` line is out before the model sends
    its next piece, so long before ``turn/completed``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "appserver", "chat", "-p", "go", "--json", "--home", str(home)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=mock_env(),
    )
    try:
        wire = _JsonLines(proc)
        for piece, hold in zip(PIECES, streaming_model, strict=True):
            delta = wire.until(
                lambda m: m.get("method") in ("item/agentMessage/delta", "turn/completed")
            )
            assert delta.get("method") == "item/agentMessage/delta", delta
            assert delta["params"]["delta"] == piece
            assert hold.reached.wait(TIMEOUT), "the model never got to its next piece"
            assert proc.poll() is None
            hold.release.set()
        done = wire.until(lambda m: m.get("method") == "turn/completed")
        wire.until_eof()
        assert proc.wait(TIMEOUT) == 0
        err = wire.stderr()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
    assert done["params"]["turn"]["status"] == "completed"
    assert "".join(PIECES) in err and "Traceback" not in err
    replay_to_recorder(wire.entries)
    s2c = [e["msg"].get("method") for e in wire.entries if e["dir"] == "s2c"]
    assert s2c.count("item/agentMessage/delta") == len(PIECES)
    assert s2c.index("turn/completed") > max(
        i for i, m in enumerate(s2c) if m == "item/agentMessage/delta"
    )


class _Screen:
    """What a pseudo-terminal's program has written, read with a deadline."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.raw = ""

    @property
    def text(self) -> str:
        return ANSI.sub("", self.raw).replace("\r\n", "\n")

    def wait_for(self, needle: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {needle!r} on the terminal:\n{self.text}"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                continue
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: the program closed the terminal
                data = b""
            assert data, f"terminal closed before {needle!r}:\n{self.text}"
            self.raw += data.decode(errors="replace")


# -- other connections ----------------------------------------------------------------------


def test_server_cmd_over_stdio(tmp_path: Path) -> None:
    server_home = tmp_path / "server-home"
    cmd = shlex.join([sys.executable, "-m", "appserver", "serve", "--stdio", "--home"])
    proc = chat("-p", "Say hello.", "--server-cmd", f"{cmd} {shlex.quote(str(server_home))}")
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Echo: Say hello.\n"
    assert (server_home / "sessions").is_dir()  # the child's home, not ours


def test_server_cmd_that_cannot_start_is_one_line() -> None:
    proc = chat("-p", "hi", "--server-cmd", "/nonexistent/appserver-binary serve")
    assert_clean(proc)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot start" in proc.stderr


@pytest.fixture
def ws_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    token = tmp_path / "token"
    token.write_text("s3cret-token\n", encoding="utf-8")
    argv = [sys.executable, "-m", "appserver", "serve", "--ws", "127.0.0.1:0"]
    argv += ["--ws-token-file", str(token), "--home", str(tmp_path / "ws-home")]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=chat_env(),
    )
    try:
        lines = _lines_of(proc.stderr)
        deadline = time.monotonic() + TIMEOUT
        url = None
        while url is None:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            assert line is not None, "server exited before listening"
            match = re.search(r"listening on: (ws://\S+)", line)
            url = match.group(1) if match else None
        yield url, token
    finally:
        proc.kill()
        proc.wait(TIMEOUT)


def test_ws_with_token(ws_server: tuple[str, Path]) -> None:
    url, token = ws_server
    proc = chat("-p", "Say hello.", "--ws", url, "--token-file", str(token))
    assert_clean(proc)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Echo: Say hello.\n"


def test_ws_bad_token_is_one_line_exit_2(ws_server: tuple[str, Path], tmp_path: Path) -> None:
    url, _ = ws_server
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n", encoding="utf-8")
    proc = chat("-p", "hi", "--ws", url, "--token-file", str(wrong))
    assert_clean(proc)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "401" in proc.stderr


def test_ws_connection_refused_is_one_line_exit_2() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = chat("-p", "hi", "--ws", f"ws://127.0.0.1:{port}")
    assert_clean(proc)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cannot connect" in proc.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = chat("-p", "hi", "--ws", "ws://127.0.0.1:1", "--server-cmd", "x")
    assert proc.returncode == 2 and "choose one of" in proc.stderr
    proc = chat("-p", "hi", "--ws", "ws://127.0.0.1:1", "--home", str(tmp_path))
    assert proc.returncode == 2 and "in-process" in proc.stderr
    assert_clean(proc)


def test_serve_never_imports_the_client() -> None:
    code = (
        "import sys, appserver.cli, appserver.server.app\n"
        "assert not [m for m in sys.modules if m.startswith('appserver.client')]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=TIMEOUT)


class _JsonLines:
    """A running ``chat --json``'s wire lines, read with deadlines; stderr is drained aside."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._lines = _lines_of(proc.stdout)
        self._err = _lines_of(proc.stderr)
        self.entries: list[dict[str, Any]] = []

    def _next(self, deadline: float, waiting_for: str) -> str | None:
        try:
            return self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail(f"no {waiting_for} within {TIMEOUT} s; got {self.entries[-5:]}")

    def until(self, match: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """Read up to the next server message that ``match``es, and return it."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            line = self._next(deadline, "matching message")
            assert line is not None, f"chat ended first; got {self.entries[-5:]}"
            entry = json.loads(line)
            self.entries.append(entry)
            if entry["dir"] == "s2c" and match(entry["msg"]):
                return dict(entry["msg"])

    def until_eof(self) -> None:
        deadline = time.monotonic() + TIMEOUT
        while (line := self._next(deadline, "end of output")) is not None:
            self.entries.append(json.loads(line))

    def stderr(self) -> str:
        return _drain(self._err)


def _drain(lines: queue.Queue[str | None]) -> str:
    """Everything a ``_lines_of`` queue holds up to EOF (bounded)."""
    deadline = time.monotonic() + TIMEOUT
    text: list[str] = []
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            pytest.fail("the stream did not end")
        if line is None:
            return "".join(text)
        text.append(line if isinstance(line, str) else line.decode(errors="replace"))


def _lines_of(stream: object) -> queue.Queue[str | None]:
    """A text stream's lines on a queue (``None`` at EOF), for reads with a deadline."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines
