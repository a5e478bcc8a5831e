"""Fixtures for provider tests: a running mock model server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.providers.helpers import WAIT
from tests.support.mock_model import MockModelServer


@pytest.fixture
def mock() -> Iterator[MockModelServer]:
    with MockModelServer(hold_timeout=WAIT) as server:
        yield server
