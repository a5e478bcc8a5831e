"""Fixtures for driving our server with real Codex clients nobody on this project wrote.

Owns:

* (``model``, the real HTTP mock model, is the root conftest's);
* ``sdk_config(home, ...)`` — an ``openai_codex.CodexConfig`` whose ``launch_args_override``
  starts ``python -m appserver serve --stdio --home HOME`` (real-peer.md §6.1);
* ``bounded(fn, home)`` — runs a blocking SDK call on a worker thread and waits at most
  ``timeout``; past that it kills the server it started (a child of this process whose command
  line names ``home``), which makes the SDK fail its pending calls, and fails the test;
* the official SDK's own reads and writes go to the wire recorder (autouse);
* ``sdk312_python`` — a Python ≥ 3.12 virtual environment holding ``codex-app-server-sdk``
  0.4.1 (the second, independent client; AGPL-3.0, used only as a test-time client), built
  once into ``.ci/sdk312-venv`` under a file lock; it skips, saying why in the test report,
  when no 3.12+ interpreter exists or pip cannot install the SDK.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import psutil
import pytest

from tests.support.wire_recorder import RECORDER

T = TypeVar("T")
TIMEOUT = 60.0
ROOT = Path(__file__).resolve().parents[2]
SECOND_SDK = "codex-app-server-sdk==0.4.1"
SECOND_SDK_VENV = ROOT / ".ci" / "sdk312-venv"

# Lines for the test report: how the second SDK ran, or why it did not.
REPORT: list[str] = []


def sdk_config(home: Path, *, cwd: Path | None = None, env: dict[str, str] | None = None) -> Any:
    from openai_codex import CodexConfig

    server_env = {"PYTHONUNBUFFERED": "1", **(env or {})}
    return CodexConfig(
        launch_args_override=(
            sys.executable,
            "-m",
            "appserver",
            "serve",
            "--stdio",
            "--home",
            str(home),
        ),
        env=server_env,
        cwd=str(cwd or home),
    )


def kill_servers_of(home: Path) -> None:
    """Kill the servers this test process started on ``home`` (and only those)."""
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if str(home) in " ".join(child.cmdline()):
                child.kill()


def bounded(fn: Callable[[], T], home: Path, timeout: float = TIMEOUT) -> T:
    """``fn()`` on a worker thread, waited for at most ``timeout`` seconds."""
    result: list[T] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=work, name="sdk-call", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        kill_servers_of(home)
        worker.join(10)
        raise AssertionError(f"the SDK call did not finish within {timeout:.0f}s: {error!r}")
    if error:
        raise error[0]
    return result[0]


@pytest.fixture(autouse=True)
def _record_official_sdk_wire(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the official SDK reads from our server goes to the wire recorder too."""
    try:
        from openai_codex.client import CodexClient
    except ImportError:
        return
    read, write = CodexClient._read_message, CodexClient._write_message

    def recorded_read(self: CodexClient) -> Any:
        msg = read(self)
        RECORDER.received(self, msg)
        return msg

    def recorded_write(self: CodexClient, payload: Any) -> None:
        RECORDER.sent(self, payload)
        write(self, payload)

    monkeypatch.setattr(CodexClient, "_read_message", recorded_read)
    monkeypatch.setattr(CodexClient, "_write_message", recorded_write)


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def find_python312() -> str | None:
    """A Python ≥ 3.12: ``$APPSERVER_PY312``, ``python3.12`` on PATH, pyenv's 3.12, then 3.13."""
    candidates = [os.environ.get("APPSERVER_PY312", "")]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    for minor in ("3.12", "3.13"):
        candidates.append(shutil.which(f"python{minor}") or "")
        candidates += sorted(glob.glob(f"{pyenv_root}/versions/{minor}.*/bin/python{minor}"))
    if sys.version_info >= (3, 12):
        candidates.append(sys.executable)
    for python in filter(None, candidates):
        version = _version_of(python)
        if version is not None and version >= (3, 12):
            return python
    return None


def _build_second_sdk_venv() -> tuple[Path | None, str]:
    """(the venv's python, how) or (None, why not)."""
    python = find_python312()
    if python is None:
        return None, "no Python >= 3.12 interpreter found (set $APPSERVER_PY312 to one)"
    venv_python = SECOND_SDK_VENV / "bin" / "python"
    stamp = SECOND_SDK_VENV / "installed.txt"
    wanted = f"{SECOND_SDK} (+ websockets<17) in .ci/sdk312-venv, from {python}"
    SECOND_SDK_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(SECOND_SDK_VENV.parent / "sdk312-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # several test runs may share this work tree
        if venv_python.exists() and stamp.exists() and stamp.read_text() == wanted:
            return venv_python, wanted
        shutil.rmtree(SECOND_SDK_VENV, ignore_errors=True)
        steps = [
            [python, "-m", "venv", str(SECOND_SDK_VENV)],
            [str(venv_python), "-m", "pip", "install", "-q", SECOND_SDK, "websockets<17"],
        ]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.SubprocessError) as exc:
                return None, f"{' '.join(step[:4])}: {exc}"
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                return None, f"{' '.join(step[:4])} failed: {' | '.join(tail)}"
        stamp.write_text(wanted)
        return venv_python, wanted


@pytest.fixture(scope="session")
def sdk312_python() -> Path:
    python, how = _build_second_sdk_venv()
    if python is None:
        REPORT.append(f"codex-app-server-sdk tests skipped: {how}")
        pytest.skip(f"codex-app-server-sdk needs Python >= 3.12: {how}")
    REPORT.append(f"codex-app-server-sdk: {how}")
    return python


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for line in REPORT:
        terminalreporter.write_line(line)
