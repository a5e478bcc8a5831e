"""Security fixtures: the mock model for turns that play an attacker's commands."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mock_model import MockModelServer


@pytest.fixture
def model() -> Iterator[MockModelServer]:
    with MockModelServer() as server:
        yield server
