"""Commands the agent runs never see a credential, and never run without a time limit.

Covers: a command run by a real turn prints its environment, and it holds none of the
provider's ``env_key``, the variable named by its ``env_http_headers``, a ``GITHUB_PAT``, a
``DATABASE_URL`` with a password, a ``ghp_`` token under an innocent name, or a copy of the
provider key under another name, while ordinary variables, ``PATH`` and a variable named in
``shell_environment_policy.allow`` still reach it; the name and value detectors one by one
(``PATH``, ``PWD``, ``GIT_AUTHOR_NAME`` stay); the Codex ``[shell_environment_policy]`` keys
(``inherit``, ``exclude``, ``set``, ``include_only``, ``ignore_default_excludes``) and a
malformed table refusing to start; the default command timeout (a ``sleep 100`` with a small
configured default times out) and a model-given ``timeout_ms`` capped at the maximum.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from appserver.engine.tools.command_policy import CommandPolicy
from appserver.engine.tools.environment import (
    EnvironmentPolicy,
    PolicyError,
    looks_secret,
    value_looks_secret,
)
from tests.engine.test_turns import completed_turn, items_of, run_turn, start_thread
from tests.harness import StdioWire, cli_argv, server_env, spawn_stdio
from tests.security.helpers import write_config
from tests.support import mock_model as mm

PROVIDER_KEY = "provider-key-0123456789"
ENV = {
    "MOCK_ACCESS": PROVIDER_KEY,
    "ORG_HEADER_VALUE": "org-header-credential",  # named by env_http_headers only
    "GITHUB_PAT": "pat-value-DO-NOT-LEAK",
    "DATABASE_URL": "postgres://app:db-password-DO-NOT-LEAK@db.internal:5432/app",
    "INNOCENT_LOOKING": "ghp_" + "A" * 36,
    "COPY_OF_KEY": PROVIDER_KEY,
    "ALLOWED_TOKEN": "allowed-visible-value",
    "BENIGN_SETTING": "visible-value",
    "PLAIN_URL": "https://example.com/path?page=2",
}
HIDDEN = [
    "MOCK_ACCESS",
    "ORG_HEADER_VALUE",
    "GITHUB_PAT",
    "DATABASE_URL",
    "INNOCENT_LOOKING",
    "COPY_OF_KEY",
]


async def _run_command(
    home: Path, model: Any, command: dict[str, Any], extra: str = ""
) -> tuple[dict[str, Any], float]:
    write_config(
        home,
        model.base_url,
        extra=extra,
        provider_extra='env_http_headers = { "X-Org" = "ORG_HEADER_VALUE" }',
    )
    model.add(mm.sse_function_call("call_1", "shell_command", command), mm.sse_text("done"))
    client = StdioWire(await spawn_stdio(home, env=ENV))
    try:
        await client.initialize()
        tid = await start_thread(client, home)
        started = time.monotonic()
        await run_turn(client, tid, "run it")
        assert (await completed_turn(client))["status"] == "completed"
        elapsed = time.monotonic() - started
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    return items_of(client, "item/completed", "commandExecution")[0], elapsed


async def test_command_environment_holds_no_credential(home: Path, model: Any) -> None:
    allow = '[shell_environment_policy]\nallow = ["ALLOWED_*"]'
    item, _ = await _run_command(home, model, {"command": "env"}, extra=allow)
    # The provider really got its header from the variable the command cannot see.
    assert model.requests[0].header("x-org") == "org-header-credential"
    lines = item["aggregatedOutput"].splitlines()
    names = {line.partition("=")[0] for line in lines}
    assert not names & set(HIDDEN), names & set(HIDDEN)
    output = item["aggregatedOutput"]
    for name in HIDDEN:
        assert ENV[name] not in output, name
    assert "ALLOWED_TOKEN=allowed-visible-value" in lines
    assert "BENIGN_SETTING=visible-value" in lines
    assert "PLAIN_URL=https://example.com/path?page=2" in lines
    assert "PATH" in names


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("PATH", False),
        ("PWD", False),
        ("OLDPWD", False),
        ("GIT_AUTHOR_NAME", False),
        ("XAUTHORITY", False),
        ("PATHEXT", False),
        ("PYTHONPATH", False),
        ("DBUS_SESSION_BUS_ADDRESS", False),
        ("HOME", False),
        ("GITHUB_PAT", True),
        ("GH_PAT", True),
        ("PAT", True),
        ("SMTP_PASS", True),
        ("NEXTAUTH_URL", True),
        ("HTTP_AUTHORIZATION", True),
        ("OPENAI_API_KEY", True),
        ("GITHUB_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("PGPASSWORD", True),
        ("MYSQL_PWD", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("session_cookie", True),
        ("my_client_secret", True),
    ],
)
def test_name_detector(name: str, secret: bool) -> None:
    assert looks_secret(name) is secret


@pytest.mark.parametrize(
    ("value", "secret"),
    [
        ("postgres://user:pw@host/db", True),
        ("redis://:only-password@cache:6379/0", True),
        ("https://x-access-token-0123456789abcdef@github.com/o/r.git", True),
        ("https://git@github.com/o/r.git", False),
        ("http://localhost:8080/path?x=1", False),
        ("ghp_" + "a1" * 18, True),
        ("github_pat_" + "A" * 30, True),
        ("sk-proj-" + "x" * 30, True),
        ("xoxb-1234567890-abcdef", True),
        ("AKIAIOSFODNN7EXAMPLE", True),
        ("Bearer sk-ant-" + "z" * 24, True),
        ("/usr/local/bin:/usr/bin:/bin", False),
        ("en_US.UTF-8", False),
        ("mask-of-things", False),
    ],
)
def test_value_detector(value: str, secret: bool) -> None:
    assert value_looks_secret(value) is secret


def test_policy_keys_follow_codex() -> None:
    base = {"PATH": "/bin", "HOME": "/h", "AWS_REGION": "eu", "API_TOKEN": "t", "X": "1"}
    assert EnvironmentPolicy.from_config({"inherit": "core"}).build(base) == {
        "PATH": "/bin",
        "HOME": "/h",
    }
    assert EnvironmentPolicy.from_config({"inherit": "none", "set": {"CI": 1}}).build(base) == {
        "CI": "1"
    }
    policy = EnvironmentPolicy.from_config({"exclude": ["aws_*"], "include_only": ["*A*", "X"]})
    assert policy.build(base) == {"PATH": "/bin", "X": "1"}
    kept = EnvironmentPolicy.from_config({"ignore_default_excludes": True}).build(base)
    assert kept["API_TOKEN"] == "t"
    allowed = EnvironmentPolicy.from_config({"allow": ["api_token"], "exclude": ["X"]})
    assert allowed.build(base) == {
        "PATH": "/bin",
        "HOME": "/h",
        "AWS_REGION": "eu",
        "API_TOKEN": "t",
    }
    for bad in ({"inherit": "some"}, {"exclude": "X"}, {"allow": [1]}, {"set": []}):
        with pytest.raises(PolicyError):
            EnvironmentPolicy.from_config(bad)
    with pytest.raises(PolicyError):
        EnvironmentPolicy.from_config(["not", "a", "table"])


def test_command_timeouts() -> None:
    policy = CommandPolicy.from_config({})
    assert (policy.default_timeout_ms, policy.max_timeout_ms) == (10_000, 600_000)
    assert policy.timeout_ms(None) == 10_000
    assert policy.timeout_ms(0) == 10_000
    assert policy.timeout_ms(True) == 10_000
    assert policy.timeout_ms(5_000) == 5_000
    assert policy.timeout_ms(10**9) == 600_000
    small = CommandPolicy.from_config({"default_command_timeout_ms": 900_000})
    assert small.default_timeout_ms == 600_000  # the default never exceeds the maximum
    for bad in ({"default_command_timeout_ms": 0}, {"max_command_timeout_ms": "1"}):
        with pytest.raises(PolicyError):
            CommandPolicy.from_config(bad)


async def test_default_timeout_stops_a_command(home: Path, model: Any) -> None:
    extra = "default_command_timeout_ms = 300"
    item, elapsed = await _run_command(home, model, {"command": "sleep 100"}, extra=extra)
    assert item["status"] == "failed" and item["exitCode"] is None
    assert elapsed < 10
    assert "(timed out)" in str(model.requests[1].body)


async def test_model_timeout_is_capped(home: Path, model: Any) -> None:
    extra = "max_command_timeout_ms = 300"
    command = {"command": "sleep 100", "timeout_ms": 3_600_000}
    item, elapsed = await _run_command(home, model, command, extra=extra)
    assert item["exitCode"] is None and elapsed < 10


async def test_malformed_policy_refuses_to_start(home: Path) -> None:
    import asyncio

    (home / "config.toml").write_text('[shell_environment_policy]\ninherit = "most"\n')
    proc = await asyncio.create_subprocess_exec(
        *cli_argv("serve", "--stdio", "--home", str(home)),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=server_env(),
    )
    _, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 2
    assert b"shell_environment_policy.inherit" in err and b"Traceback" not in err
