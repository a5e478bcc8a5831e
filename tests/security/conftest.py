"""Security fixtures: the mock model (real HTTP on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mock_model import MockModelServer


@pytest.fixture
def model() -> Iterator[MockModelServer]:
    with MockModelServer() as server:
        yield server
