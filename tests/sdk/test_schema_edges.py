"""Responses that only some configurations produce, checked against the official schema.

Each goes through the harness, so the wire recorder validates it like every other message;
the assertions say what the schema-valid answer is. Covers: the deprecated ``on-failure``
approval policy (accepted from config and params, but not in the schema's ``AskForApproval``)
reported as ``on-request`` by thread/start and config/read.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.harness import open_client
from tests.support.wire_recorder import RECORDER


@pytest.mark.parametrize("source", ["config", "params"])
async def test_on_failure_is_reported_as_a_schema_value(source: str, home: Path) -> None:
    if source == "config":
        (home / "config.toml").write_text('approval_policy = "on-failure"\n', encoding="utf-8")
    params = {"approvalPolicy": "on-failure"} if source == "params" else {}
    before = len(RECORDER.mismatches)
    async with open_client("in_process", home) as c:
        started = await c.call("thread/start", {"cwd": str(home), **params})
        assert started["approvalPolicy"] == "on-request"
        config = (await c.call("config/read", {}))["config"]
        if source == "config":
            assert config["approval_policy"] == "on-request"
    assert RECORDER.mismatches[before:] == []
