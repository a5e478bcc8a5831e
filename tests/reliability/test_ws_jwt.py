"""Signed bearer tokens (HS256 JWT) for the WebSocket upgrade.

Covers, against ``UpgradePolicy`` directly: a valid token passes; every failure is a 401
whose reason is one short phrase (bad signature, another algorithm, ``alg: none``, garbage,
missing ``exp``, expired, not yet valid, wrong or missing ``iss``/``aud``) and the clock-skew
allowance applies both ways. Through the real CLI: ``--ws-shared-secret-file`` with
``--ws-issuer``/``--ws-audience`` admits a valid token and refuses an expired one with a 401
carrying only the reason; a capability token and a JWT may be configured together; a secret
under 32 bytes, or ``--ws-issuer`` without a secret, refuses to start.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from appserver.transports.ws_auth import AuthFailure, JwtPolicy, UpgradePolicy
from tests.harness import TIMEOUT, cli_argv, server_env, start_ws_server, ws_connect

SECRET = b"0123456789abcdef0123456789abcdef-shared"
ISSUER = "https://issuer.example"
AUDIENCE = "appserver-tests"
OTHER_SECRET = b"another-secret-of-32-bytes-or-more"


def token(claims: dict[str, Any] | None = None, *, key: bytes = SECRET, alg: str = "HS256") -> str:
    now = int(time.time())
    body: dict[str, Any] = {"exp": now + 300, "iss": ISSUER, "aud": AUDIENCE, "sub": "tester"}
    body.update(claims or {})
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg)


def unsigned(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, None, algorithm="none")


POLICY = UpgradePolicy(jwt_policy=JwtPolicy(SECRET, ISSUER, AUDIENCE, max_clock_skew_s=30))


def reason(bearer: str | None, policy: UpgradePolicy = POLICY) -> str | None:
    header = None if bearer is None else f"Bearer {bearer}"
    try:
        policy.check(None, header)
    except AuthFailure as fail:
        assert fail.status == 401
        return fail.reason
    return None


def test_valid_token_passes() -> None:
    assert reason(token()) is None
    assert POLICY.requires_auth


def now() -> int:
    return int(time.time())


# Tokens are built when each test runs: a time-based one built at import could be stale.
REJECTED: list[tuple[str, Callable[[], str], str]] = [
    ("no header", lambda: "", "missing websocket bearer token"),
    ("wrong signature", lambda: token(key=OTHER_SECRET), "invalid websocket jwt"),
    ("HS512", lambda: token(alg="HS512", key=SECRET * 2), "invalid websocket jwt"),
    ("alg none", lambda: unsigned({"exp": now() + 300, "iss": ISSUER}), "invalid websocket jwt"),
    ("garbage", lambda: "not.a.jwt", "invalid websocket jwt"),
    ("truncated", lambda: token()[:-5], "invalid websocket jwt"),
    ("no exp", lambda: token({"exp": None}), "websocket jwt missing exp"),
    ("expired", lambda: token({"exp": now() - 120}), "expired websocket jwt"),
    ("not yet valid", lambda: token({"nbf": now() + 120}), "websocket jwt not yet valid"),
    ("wrong iss", lambda: token({"iss": "https://else.example"}), "invalid websocket jwt issuer"),
    ("missing iss", lambda: token({"iss": None}), "invalid websocket jwt issuer"),
    ("wrong aud", lambda: token({"aud": "someone-else"}), "invalid websocket jwt audience"),
    ("missing aud", lambda: token({"aud": None}), "invalid websocket jwt audience"),
]  # fmt: skip


@pytest.mark.parametrize(("bearer", "expected"), [(b, e) for _, b, e in REJECTED],
                         ids=[n for n, _, _ in REJECTED])  # fmt: skip
def test_rejections_are_401_with_only_the_reason(bearer: Callable[[], str], expected: str) -> None:
    assert reason(bearer() or None) == expected


def test_not_a_bearer_header() -> None:
    with pytest.raises(AuthFailure) as info:
        POLICY.check(None, "Basic dXNlcjpwYXNz")
    assert (info.value.status, info.value.reason) == (401, "invalid authorization header")


def test_clock_skew_allowance() -> None:
    t0 = now()
    assert reason(token({"exp": t0 - 10})) is None  # expired 10 s ago, skew 30 s
    assert reason(token({"nbf": t0 + 10})) is None
    strict = UpgradePolicy(jwt_policy=JwtPolicy(SECRET, ISSUER, AUDIENCE, max_clock_skew_s=0))
    assert reason(token({"exp": t0 - 10}), strict) == "expired websocket jwt"
    assert reason(token({"nbf": t0 + 10}), strict) == "websocket jwt not yet valid"


def test_iss_and_aud_are_not_checked_unless_configured() -> None:
    loose = UpgradePolicy(jwt_policy=JwtPolicy(SECRET))
    assert reason(token({"iss": "anyone", "aud": "anything"}), loose) is None
    assert reason(token({"iss": None, "aud": None}), loose) is None
    assert reason(token({"exp": None}), loose) == "websocket jwt missing exp"


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError):
        JwtPolicy(b"x" * 31)


# -- through the CLI -----------------------------------------------------------------------------


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "jwt-secret"
    path.write_bytes(SECRET + b"\n")
    path.chmod(0o600)
    return path


async def refused(url: str, bearer: str | None) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else None
    with pytest.raises(InvalidStatus) as info:
        await asyncio.wait_for(websockets.connect(url, additional_headers=headers), TIMEOUT)
    return info.value.response.status_code, info.value.response.body or b""


async def test_cli_admits_a_valid_jwt_and_refuses_an_expired_one(
    home: Path, secret_file: Path
) -> None:
    server = await start_ws_server(
        home,
        "--ws-shared-secret-file", str(secret_file),
        "--ws-issuer", ISSUER,
        "--ws-audience", AUDIENCE,
        "--ws-max-clock-skew-seconds", "5",
    )  # fmt: skip
    try:
        client = await ws_connect(server.url, token())
        try:
            assert "result" in await client.initialize()
        finally:
            await client.close()
        assert await refused(server.url, None) == (401, b"missing websocket bearer token\n")
        expired = token({"exp": int(time.time()) - 60})
        assert await refused(server.url, expired) == (401, b"expired websocket jwt\n")
        forged = token(key=b"z" * 40)
        assert await refused(server.url, forged) == (401, b"invalid websocket jwt\n")
        log = "".join(server.stderr_lines)
        assert SECRET.decode() not in log and forged not in log and expired not in log
    finally:
        await server.stop()


async def test_cli_accepts_a_capability_token_or_a_jwt(
    home: Path, secret_file: Path, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("capability-token-for-tests\n")
    server = await start_ws_server(
        home, "--ws-token-file", str(token_file), "--ws-shared-secret-file", str(secret_file)
    )
    try:
        for bearer in ("capability-token-for-tests", token()):
            client = await ws_connect(server.url, bearer)
            try:
                assert "result" in await client.initialize()
            finally:
                await client.close()
        assert (await refused(server.url, "neither"))[0] == 401
    finally:
        await server.stop()


async def _refuses_to_start(home: Path, *args: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        *cli_argv("serve", "--ws", "127.0.0.1:0", "--home", str(home), *args),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=server_env(),
    )
    out, err = await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 2 and out == b""
    text = err.decode()
    assert "Traceback" not in text
    return text


async def test_cli_refuses_a_short_secret(home: Path, tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"only-31-bytes-of-secret-0123456")
    text = await _refuses_to_start(home, "--ws-shared-secret-file", str(short))
    assert "must hold at least 32 bytes" in text
    assert "only-31-bytes" not in text


async def test_cli_refuses_issuer_without_secret(home: Path) -> None:
    text = await _refuses_to_start(home, "--ws-issuer", ISSUER)
    assert "need --ws-shared-secret-file" in text
