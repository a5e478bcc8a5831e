"""Shared fixtures: a fresh home per test and the transport parametrisation."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import TRANSPORTS


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)
