"""API keys and other secrets never leave the server.

Covers: during a turn run with the provider key set and the server logging at debug level,
the key appears nowhere in the server's stderr, in any file under the home directory
(rollouts, index), or in the environment of a command the agent runs (``shell_command``
running ``env``), while ordinary variables still reach it; variables whose names look like
secrets (KEY, TOKEN, SECRET, PASSWORD) and every provider ``env_key`` are removed from that
environment; ``config/read`` redacts literal tokens and credential headers from the config
file over every transport. The same holds for a key stored by ``account/login/start``: used
as the ``openai`` provider's bearer token, it appears in no log line (debug level), no reply
or notification, no ``config/read``, no command's environment or output, and no file under
the home but auth.json (mode 0600).
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

from appserver.engine.tools.environment import command_environment
from tests.engine.test_turns import completed_turn, items_of, run_turn, start_thread
from tests.harness import StdioWire, open_client, spawn_stdio
from tests.support import mock_model as mm
from tests.support.config import config_toml, provider_table

API_KEY = "sk-live-0123456789-DO-NOT-LEAK"
BEARER = "tok-config-literal-DO-NOT-LEAK"
HEADER_SECRET = "hdr-credential-DO-NOT-LEAK"
OTHER_SECRETS = {
    "SERVICE_AUTH_TOKEN": "token-value-DO-NOT-LEAK",
    "DB_PASSWORD": "password-value-DO-NOT-LEAK",
    "my_client_secret": "lowercase-secret-DO-NOT-LEAK",
}
LEAKS = [API_KEY, BEARER, HEADER_SECRET, *OTHER_SECRETS.values()]


def write_config(home: Path, base_url: str) -> None:
    # The provider's env_key, MOCK_ACCESS, does not look like a secret by its name: it must be
    # removed because it is a configured env_key.
    mock = provider_table("mock", base_url, env_key="MOCK_ACCESS")
    other = provider_table(
        "other",
        base_url,
        name="Other provider",
        wire_api=None,
        env_key=None,
        request_retries=None,
        stream_retries=None,
        extra=(
            f'experimental_bearer_token = "{BEARER}"\n'
            f'http_headers = {{ "Authorization" = "Bearer {HEADER_SECRET}", '
            '"X-Plain" = "visible" }'
        ),
    )
    (home / "config.toml").write_text(config_toml(mock, other), encoding="utf-8")


ENV = {"MOCK_ACCESS": API_KEY, "BENIGN_SETTING": "visible-value", **OTHER_SECRETS}


def _files_containing(root: Path, needles: list[str]) -> list[tuple[Path, str]]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(path, n) for n in needles if n.encode() in data]
    return found


async def test_api_key_stays_out_of_logs_rollouts_and_commands(home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(
        mm.sse_function_call("call_env", "shell_command", {"command": "env"}),
        mm.sse_text("environment listed"),
    )
    client = StdioWire(await spawn_stdio(home, "--log-level", "debug", env=ENV))
    try:
        await client.initialize()
        tid = await start_thread(client, home)
        await run_turn(client, tid, "list the environment")
        assert (await completed_turn(client))["status"] == "completed"
        config = await client.call("config/read", {})
        await client.call("thread/read", {"threadId": tid, "includeTurns": True})
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    # The key was really in use: the model request carried it.
    assert model.requests[0].header("authorization") == f"Bearer {API_KEY}"
    cmd = items_of(client, "item/completed", "commandExecution")[0]
    output = cmd["aggregatedOutput"]
    assert cmd["exitCode"] == 0 and "BENIGN_SETTING=visible-value" in output
    assert "PATH=" in output
    for name in ("MOCK_ACCESS", *OTHER_SECRETS):
        assert f"{name}=" not in output
    stderr = "".join(client.stderr_lines)
    assert "DEBUG" in stderr  # debug logging was on
    wire = "".join(str(m) for m in client.seen)
    for secret in LEAKS:
        assert secret not in stderr, secret
        assert secret not in wire, secret
        assert secret not in str(config), secret
    rollouts = list((home / "sessions").rglob("rollout-*.jsonl"))
    assert rollouts
    leaked = _files_containing(home, [API_KEY, *OTHER_SECRETS.values()])
    assert not leaked, leaked


STORED_KEY = "sk-stored-login-0123456789-DO-NOT-LEAK"


async def test_stored_api_key_stays_out_of_logs_rollouts_and_commands(
    home: Path, model: Any
) -> None:
    openai = provider_table("openai", model.base_url, name=None, wire_api=None, env_key=None)
    (home / "config.toml").write_text(config_toml(openai, provider="openai"), encoding="utf-8")
    model.add(
        mm.sse_function_call("call_env", "shell_command", {"command": "env"}),
        mm.sse_text("environment listed"),
    )
    client = StdioWire(await spawn_stdio(home, "--log-level", "debug", env=ENV))
    try:
        await client.initialize()
        login = {"type": "apiKey", "apiKey": STORED_KEY}
        assert (await client.call("account/login/start", login)) == {"type": "apiKey"}
        await client.notification("account/updated")
        tid = await start_thread(client, home)
        await run_turn(client, tid, "list the environment")
        assert (await completed_turn(client))["status"] == "completed"
        config = await client.call("config/read", {"includeLayers": True})
        account = await client.call("account/read", {})
        await client.call("thread/read", {"threadId": tid, "includeTurns": True})
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    assert account["account"] == {"type": "apiKey"}
    # The stored key was really in use (OPENAI_API_KEY is not in the server's environment).
    assert model.requests[0].header("authorization") == f"Bearer {STORED_KEY}"
    output = items_of(client, "item/completed", "commandExecution")[0]["aggregatedOutput"]
    assert "BENIGN_SETTING=visible-value" in output and STORED_KEY not in output
    stderr = "".join(client.stderr_lines)
    assert "DEBUG" in stderr
    assert STORED_KEY not in stderr
    assert STORED_KEY not in "".join(str(m) for m in client.seen)
    assert STORED_KEY not in str(config)
    auth = home / "auth.json"
    assert stat.S_IMODE(auth.stat().st_mode) == 0o600
    leaked = _files_containing(home, [STORED_KEY])
    assert leaked == [(auth, STORED_KEY)], leaked


async def test_config_read_redacts_secrets(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    async with open_client(transport, home, env=ENV) as c:
        config = (await c.call("config/read", {}))["config"]
    other = config["model_providers"]["other"]
    assert other["experimental_bearer_token"] == "[redacted]"
    assert other["http_headers"]["Authorization"] == "[redacted]"
    assert other["http_headers"]["X-Plain"] == "[redacted]"  # header values: credentials
    assert config["model_providers"]["mock"]["env_key"] == "MOCK_ACCESS"  # a name, not a secret
    for secret in LEAKS:
        assert secret not in str(config)


def test_command_environment_drops_secret_looking_names_and_env_keys() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/u",
        "OPENAI_API_KEY": "k",
        "GITHUB_TOKEN": "t",
        "AWS_SECRET_ACCESS_KEY": "s",
        "PGPASSWORD": "p",
        "my_api_key": "lower",
        "CUSTOM_CREDENTIALS": "c",
        "PROVIDER_ACCESS": "configured",
        "LANG": "C.UTF-8",
    }
    env = command_environment({"PROVIDER_ACCESS"}, base)
    assert env == {"PATH": "/usr/bin", "HOME": "/home/u", "LANG": "C.UTF-8"}
