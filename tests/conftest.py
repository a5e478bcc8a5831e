"""Shared fixtures: a fresh home per test, the mock model (a real HTTP server on 127.0.0.1)
and the transport parametrisation; the wire recorder's report (a summary line, and a failed run
on any schema mismatch). A home's config pointing at the mock model: ``tests.support.config``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import TRANSPORTS
from tests.support.mock_model import MockModelServer
from tests.support.wire_recorder import RECORDER


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture
def model() -> Iterator[MockModelServer]:
    with MockModelServer() as server:
        yield server


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if RECORDER.mismatches and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    mismatches = RECORDER.mismatches
    if mismatches:
        terminalreporter.section("wire recorder: messages off the schema (the run fails)")
        for m in mismatches[:50]:
            terminalreporter.line(f"{m.test}: {m.kind} {m.method}: {m.detail}")
            terminalreporter.line(f"    {m.message}")
        if len(mismatches) > 50:
            terminalreporter.line(f"... and {len(mismatches) - 50} more")
    if terminalreporter.verbosity > 0 and RECORDER.methods:
        counts = ", ".join(f"{m} {n}" for m, n in sorted(RECORDER.methods.items()))
        terminalreporter.write_line(f"wire recorder, messages per method: {counts}")
    terminalreporter.write_line(RECORDER.summary())
