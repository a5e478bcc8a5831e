"""The official SDK's API-key login, account read and logout against our server over stdio.

Covers: ``Codex.login_api_key`` stores the key (auth.json) and ``Codex.account()`` then reports
an API-key account; a turn sends the stored key as the bearer token of a provider that
``requires_openai_auth`` and has no ``env_key``; ``Codex.logout()`` (sent without params)
removes the login, and ``account()`` reports none. Every SDK call runs under ``bounded``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

openai_codex = pytest.importorskip(
    "openai_codex", reason="openai-codex 0.163.0 is not installed (.ci/run installs it --no-deps)"
)

from openai_codex import Codex  # noqa: E402
from openai_codex.generated.v2_all import ApiKeyAccount  # noqa: E402

from tests.sdk.conftest import bounded, sdk_config  # noqa: E402
from tests.support import mock_model as mm  # noqa: E402
from tests.support.config import config_toml, provider_table  # noqa: E402
from tests.support.mock_model import MockModelServer  # noqa: E402

KEY = "sk-sdk-login-0123456789"


def test_api_key_login_through_the_sdk(home: Path, model: MockModelServer) -> None:
    mock = provider_table(
        "mock", model.base_url, wire_api=None, env_key=None, extra="requires_openai_auth = true"
    )
    (home / "config.toml").write_text(
        config_toml(mock, approval=None, sandbox=None), encoding="utf-8"
    )
    model.add(mm.sse_text("logged in"))

    def flow() -> tuple[Any, Any, Any]:
        with Codex(sdk_config(home)) as codex:
            before = codex.account()
            codex.login_api_key(KEY)
            during = codex.account()
            reply = codex.thread_start().run("hello").final_response
            codex.logout()
            return before, (during, reply), codex.account()

    before, (during, reply), after = bounded(flow, home)
    assert before.account is None and before.requires_openai_auth is True
    assert isinstance(during.account.root, ApiKeyAccount)
    assert reply == "logged in"
    assert model.requests[-1].header("authorization") == f"Bearer {KEY}"
    assert after.account is None
    assert not (home / "auth.json").exists()
