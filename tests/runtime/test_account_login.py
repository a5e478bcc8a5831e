"""API-key login: ``account/login/start``, ``account/login/cancel``, ``account/logout`` and what
``account/read`` and the model requests make of them, over all three transports.

Covers: a login is answered ``{type: "apiKey"}`` before ``account/login/completed`` and
``account/updated`` (``authMode: "apikey"``); auth.json then holds the key with mode 0600 and
``account/read`` reports the account; the built-in ``openai`` provider (its
``OPENAI_API_KEY`` unset) sends the stored key as its bearer token, and a second login's key
from the next turn on (the cached client follows); logout (sent without params, as the
official SDK sends it) answers ``{}``, removes the file and announces ``authMode: null``, and
the next turn fails for want of a key without reaching the model. Refused: ChatGPT and Bedrock
logins (API-key login only), an empty or whitespace key, a key that cannot be a bearer token,
a missing key, an unknown type; none of them writes a file or notifies. Cancel answers
``notFound``. The key appears in no reply, notification or ``config/read``. Over WebSocket a
second client gets both notifications too. A stored key goes to no provider without
``requires_openai_auth``, and a key in the environment wins over the stored one.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

from tests.harness import WireClient, open_client, start_ws_server, ws_connect
from tests.support import mock_model as mm
from tests.support.config import config_toml, provider_table
from tests.support.mock_model import MockModelServer

KEY = "sk-stored-login-0123456789-DO-NOT-LEAK"
SECOND_KEY = "sk-second-login-9876543210-DO-NOT-LEAK"
INVALID_REQUEST = -32600


def write_openai_config(home: Path, base_url: str) -> None:
    """The built-in ``openai`` provider (requires_openai_auth, env_key OPENAI_API_KEY, which
    the harness removes from the server's environment) pointed at the mock model."""
    openai = provider_table("openai", base_url, name=None, wire_api=None, env_key=None)
    mock = provider_table("mock", base_url, wire_api=None, env_key="MOCK_ACCESS")
    (home / "config.toml").write_text(config_toml(openai, mock, provider="openai"), "utf-8")


def methods_after(c: WireClient, index: int) -> list[str]:
    return [str(m["method"]) for m in c.seen[index:] if "method" in m and "id" not in m]


async def login(c: WireClient, key: str) -> None:
    """Log in and check the reply comes first, then the two notifications, in order."""
    start = len(c.seen)
    reply = await c.request("account/login/start", {"type": "apiKey", "apiKey": key})
    assert reply["result"] == {"type": "apiKey"}, reply
    done = await c.notification("account/login/completed")
    assert done["params"] == {"loginId": None, "success": True, "error": None}
    updated = await c.notification("account/updated")
    assert updated["params"]["authMode"] == "apikey"
    order = [m for m in c.seen[start:] if m is reply or m is done or m is updated]
    assert order == [reply, done, updated]


async def turn(c: WireClient, thread_id: str, text: str) -> dict[str, Any]:
    params = {"threadId": thread_id, "input": [{"type": "text", "text": text}]}
    await c.call("turn/start", params)
    completed = await c.notification("turn/completed")
    return dict(completed["params"]["turn"])


async def test_login_use_and_logout(transport: str, home: Path, model: MockModelServer) -> None:
    write_openai_config(home, model.base_url)
    model.add(mm.sse_text("first"), mm.sse_text("second"))
    auth = home / "auth.json"
    async with open_client(transport, home) as c:
        before = await c.call("account/read", {})
        assert before == {"account": None, "requiresOpenaiAuth": True}

        await login(c, KEY)
        assert stat.S_IMODE(auth.stat().st_mode) == 0o600
        assert json.loads(auth.read_text())["OPENAI_API_KEY"] == KEY
        assert await c.call("account/read", {}) == {
            "account": {"type": "apiKey"},
            "requiresOpenaiAuth": True,
        }

        thread = await c.call("thread/start", {"cwd": str(home)})
        tid = thread["thread"]["id"]
        assert (await turn(c, tid, "one"))["status"] == "completed"
        assert model.requests[-1].header("authorization") == f"Bearer {KEY}"

        # A new login replaces the key for the next turn; the model client is not rebuilt
        # by anyone but the request that needs the new key.
        await login(c, SECOND_KEY)
        assert json.loads(auth.read_text())["OPENAI_API_KEY"] == SECOND_KEY
        assert (await turn(c, tid, "two"))["status"] == "completed"
        assert model.requests[-1].header("authorization") == f"Bearer {SECOND_KEY}"

        # The official SDK sends account/logout without params.
        reply = await c.request("account/logout", omit_params=True)
        assert reply["result"] == {}
        updated = await c.notification("account/updated")
        assert updated["params"] == {"authMode": None, "planType": None}
        assert not auth.exists()
        assert (await c.call("account/read", {}))["account"] is None

        sent = len(model.requests)
        failed = await turn(c, tid, "three")
        assert failed["status"] == "failed"
        assert "OPENAI_API_KEY" in failed["error"]["message"]
        assert len(model.requests) == sent  # refused before any network traffic

        # Logging out again (params null this time) is harmless.
        assert "result" in await c.request("account/logout", None)
        config = await c.call("config/read", {"includeLayers": True})
    for secret in (KEY, SECOND_KEY):
        assert secret not in str(config)
        assert secret not in json.dumps(c.seen)


async def test_refused_logins_and_cancel(transport: str, home: Path) -> None:
    refused: list[tuple[dict[str, Any], str]] = [
        ({"type": "chatgpt"}, "API-key login only"),
        ({"type": "chatgpt", "codexStreamlinedLogin": True}, "API-key login only"),
        ({"type": "chatgptDeviceCode"}, "API-key login only"),
        (
            {"type": "chatgptAuthTokens", "accessToken": "jwt", "chatgptAccountId": "acct"},
            "API-key login only",
        ),
        ({"type": "amazonBedrock", "apiKey": KEY, "region": "us-east-1"}, "API-key login only"),
        ({"type": "apiKey", "apiKey": ""}, "must not be empty"),
        ({"type": "apiKey", "apiKey": " \t\n "}, "must not be empty"),
        ({"type": "apiKey", "apiKey": f"{KEY}\r\nX-Injected: 1"}, "printable ASCII"),
        ({"type": "apiKey"}, "missing field `apiKey`"),
        ({"type": "apiKey", "apiKey": 7}, "expected a string"),
        ({"type": "apikey", "apiKey": KEY}, "unknown variant"),
        ({"apiKey": KEY}, "missing field `type`"),
    ]
    async with open_client(transport, home) as c:
        start = len(c.seen)
        for params, expected in refused:
            reply = await c.request("account/login/start", params)
            error = reply["error"]
            assert error["code"] == INVALID_REQUEST, (params, reply)
            assert expected in error["message"], (params, error)
            assert KEY not in error["message"]
            assert "Traceback" not in error["message"]
        cancel = await c.call("account/login/cancel", {"loginId": "no-such-login"})
        assert cancel == {"status": "notFound"}
        missing = await c.request("account/login/cancel", {})
        assert missing["error"]["message"] == "Invalid request: missing field `loginId`"
        # Replies are in order: by this reply, any notification of the above would be here.
        assert (await c.call("account/read", {}))["account"] is None
        assert methods_after(c, start) == []
    assert not (home / "auth.json").exists()


async def test_every_websocket_client_hears_of_a_login(home: Path) -> None:
    server = await start_ws_server(home)
    a = b = None
    try:
        a = await ws_connect(server.url)
        b = await ws_connect(server.url)
        for c in (a, b):
            await c.initialize()
        await login(a, KEY)
        done = await b.notification("account/login/completed")
        assert done["params"]["success"] is True
        assert (await b.notification("account/updated"))["params"]["authMode"] == "apikey"
        assert (await b.call("account/read", {}))["account"] == {"type": "apiKey"}
        assert "result" in await b.request("account/logout", {})
        for c in (a, b):
            assert (await c.notification("account/updated"))["params"]["authMode"] is None
        assert not any(KEY in line for line in server.stderr_lines)
    finally:
        for c in (a, b):
            if c is not None:
                await c.close()
        await server.stop()


async def test_stored_key_goes_only_to_openai_auth_providers_and_env_wins(
    transport: str, home: Path, model: MockModelServer
) -> None:
    write_openai_config(home, model.base_url)
    model.add(mm.sse_text("env key"))
    env = {"OPENAI_API_KEY": "sk-from-the-environment"}
    async with open_client(transport, home, env=env) as c:
        # The environment's key already authenticates the default provider.
        assert (await c.call("account/read", {}))["account"] == {"type": "apiKey"}
        await login(c, KEY)
        tid = (await c.call("thread/start", {"cwd": str(home)}))["thread"]["id"]
        assert (await turn(c, tid, "openai"))["status"] == "completed"
        assert model.requests[-1].header("authorization") == "Bearer sk-from-the-environment"

        other = await c.call("thread/start", {"cwd": str(home), "modelProvider": "mock"})
        sent = len(model.requests)
        failed = await turn(c, other["thread"]["id"], "mock")
        assert failed["status"] == "failed"
        assert "MOCK_ACCESS" in failed["error"]["message"]
        assert len(model.requests) == sent

        assert "result" in await c.request("account/logout", {})
        # The environment's key still authenticates: the update says so, as account/read does.
        updated = await c.notification("account/updated")
        assert updated["params"]["authMode"] == "apikey"
        assert (await c.call("account/read", {}))["account"] == {"type": "apiKey"}
