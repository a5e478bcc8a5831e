"""Engine fixtures: the mock model server (real HTTP on 127.0.0.1) and a home configured
to use it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.mock_model import MockModelServer


@pytest.fixture
def model() -> Iterator[MockModelServer]:
    with MockModelServer() as server:
        yield server


def write_config(
    home: Path,
    base_url: str,
    *,
    approval: str = "never",
    sandbox: str = "danger-full-access",
    stream_retries: int = 0,
    request_retries: int = 0,
    wire_api: str = "responses",
) -> None:
    (home / "config.toml").write_text(
        f"""
model = "mock-model"
model_provider = "mock"
approval_policy = "{approval}"
sandbox_mode = "{sandbox}"

[model_providers.mock]
name = "Mock provider"
base_url = "{base_url}"
wire_api = "{wire_api}"
env_key = "MOCK_API_KEY"
request_max_retries = {request_retries}
stream_max_retries = {stream_retries}
""",
        encoding="utf-8",
    )


ENV = {"MOCK_API_KEY": "sk-test-mock-key"}
