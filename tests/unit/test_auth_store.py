"""``AuthStore`` (auth.json) and where a stored key ranks in ``api_key``.

Covers: a saved key is read back, in a file of mode 0600 whatever the umask, replacing an
older, wider-open file; no temporary file is left behind; a change made on disk by someone
else (another server on the same home) is seen; a Codex auth.json without an API key
(ChatGPT tokens), malformed JSON and a blank key all read as "no key", and the warning about
the malformed file does not quote it; delete says whether there was a file; the store's repr
names no key. ``api_key``: bearer token, then the env key, then the stored key, which only
``requires_openai_auth`` providers get.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import pytest

from appserver.engine.providers.config import ProviderInfo, api_key, builtin_providers
from appserver.server.auth import AuthStore

KEY = "sk-unit-0123456789"


def test_save_read_delete(home: Path) -> None:
    store = AuthStore(home)
    assert store.api_key() is None
    old = os.umask(0)
    try:
        (home / "auth.json").write_text("{}")
        os.chmod(home / "auth.json", 0o666)
        store.save_api_key(KEY)
    finally:
        os.umask(old)
    path = home / "auth.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())["OPENAI_API_KEY"] == KEY
    assert store.api_key() == KEY
    assert sorted(p.name for p in home.iterdir()) == ["auth.json"]
    assert KEY not in repr(store) and KEY not in str(store)
    assert store.delete() is True
    assert store.api_key() is None
    assert store.delete() is False


def test_changes_on_disk_are_seen(home: Path) -> None:
    store = AuthStore(home)
    store.save_api_key(KEY)
    assert store.api_key() == KEY
    AuthStore(home).save_api_key("sk-other")  # e.g. another server on the same home
    assert store.api_key() == "sk-other"
    os.unlink(home / "auth.json")
    assert store.api_key() is None


@pytest.mark.parametrize(
    "content",
    [
        json.dumps({"OPENAI_API_KEY": None, "tokens": {"id_token": "x"}}),
        json.dumps({"OPENAI_API_KEY": "   "}),
        json.dumps(["OPENAI_API_KEY"]),
        '{"OPENAI_API_KEY": "sk-half-written',
    ],
)
def test_unusable_files_hold_no_key(
    home: Path, content: str, caplog: pytest.LogCaptureFixture
) -> None:
    (home / "auth.json").write_text(content)
    with caplog.at_level(logging.WARNING):
        assert AuthStore(home).api_key() is None
    assert "sk-half-written" not in caplog.text


def test_stored_key_ranks_last_and_only_for_openai_auth() -> None:
    openai = builtin_providers({})["openai"]
    assert api_key(openai, {}, KEY) == KEY
    assert api_key(openai, {"OPENAI_API_KEY": "sk-env"}, KEY) == "sk-env"
    assert api_key(openai, {"OPENAI_API_KEY": "  "}, KEY) == KEY
    assert api_key(openai, {}, "  ") is None
    token = ProviderInfo.model_validate(
        {"id": "t", "name": "t", "requires_openai_auth": True, "experimental_bearer_token": "tok"}
    )
    assert api_key(token, {}, KEY) == "tok"
    other = ProviderInfo.model_validate({"id": "o", "name": "o", "env_key": "OTHER_KEY"})
    assert api_key(other, {}, KEY) is None
