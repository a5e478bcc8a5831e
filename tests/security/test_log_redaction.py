"""Credentials in a provider URL reach neither the log nor ``config/read``.

Covers: a served turn against the mock model whose ``base_url`` carries
``user:password@`` and a ``?key=`` parameter, at the default info level and at debug: the
request really used them, and no log line shows the password or the key (the HTTP client's
loggers are quieted at info; every line goes through the redacting formatter); ``config/read``
masks the URL's credentials, every ``http_headers`` value whatever its name, and secret
``query_params``, while ``env_key`` and ``env_http_headers`` (variable names) stay readable;
the URL redaction and the known-value registry on their own.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from appserver.server.handlers.discovery import redact
from appserver.server.logs import JsonFormatter, RedactingFormatter
from appserver.store.redaction import KnownSecrets, redact_url_credentials, url_secrets
from tests.engine.test_turns import completed_turn, run_turn, start_thread
from tests.harness import StdioWire, spawn_stdio
from tests.security.helpers import files_containing, write_config
from tests.support import mock_model as mm

PASSWORD = "url-password-DO-NOT-LEAK"
QUERY_KEY = "query-key-DO-NOT-LEAK"
ODD_HEADER = "odd-header-credential-DO-NOT-LEAK"


def _config(home: Path, model: Any, key_in_url: bool) -> None:
    port = model.base_url.rsplit(":", 1)[1].split("/", 1)[0]
    url = f"http://user:{PASSWORD}@127.0.0.1:{port}/v1"
    params = f'"api-version" = "2025-01-01", "sig" = "{QUERY_KEY}"'
    if key_in_url:
        url += f"?key={QUERY_KEY}"  # the SDK then posts to /v1/?key=...: the turn fails
    else:
        params += f', "key" = "{QUERY_KEY}"'
    write_config(
        home,
        url,
        provider_extra=(
            f'http_headers = {{ "X-Weird-Name" = "{ODD_HEADER}" }}\n'
            'env_http_headers = { "X-Org" = "ORG_VAR" }\n'
            f"query_params = {{ {params} }}"
        ),
    )


@pytest.mark.parametrize(
    ("level", "key_in_url"), [("info", True), ("debug", True), ("info", False)]
)
async def test_url_credentials_stay_out_of_logs(
    home: Path, model: Any, level: str, key_in_url: bool
) -> None:
    _config(home, model, key_in_url)
    model.add(mm.sse_text("hello"))
    client = StdioWire(
        await spawn_stdio(home, "--log-level", level, env={"MOCK_ACCESS": "mock-access-key"})
    )
    try:
        await client.initialize()
        tid = await start_thread(client, home)
        await run_turn(client, tid, "hi")
        turn = await completed_turn(client)
        config = await client.call("config/read", {"includeLayers": True})
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    request = model.requests[0]
    assert request.header("x-weird-name") == ODD_HEADER  # the credentials were in use
    assert QUERY_KEY in request.query["key"]
    if not key_in_url:
        assert turn["status"] == "completed"
    stderr = "".join(client.stderr_lines)
    assert "HTTP Request" in stderr if level == "debug" else "DEBUG" not in stderr
    for secret in (PASSWORD, QUERY_KEY, ODD_HEADER):
        assert secret not in stderr, secret
        assert secret not in str(config), secret
    assert not files_containing(home / "sessions", [PASSWORD, QUERY_KEY, ODD_HEADER])
    provider = config["config"]["model_providers"]["mock"]
    assert provider["http_headers"] == {"X-Weird-Name": "[redacted]"}
    assert provider["env_http_headers"] == {"X-Org": "ORG_VAR"}
    assert provider["env_key"] == "MOCK_ACCESS"
    assert provider["query_params"]["api-version"] == "2025-01-01"
    assert provider["query_params"]["sig"] == "[redacted]"
    assert provider["base_url"].startswith("http://[redacted]@127.0.0.1:")


def test_redact_url_credentials() -> None:
    text = (
        'POST "http://u:p4ss@h:1/v1/responses?api_key=K1&x=2&token=T2&sig=S3" '
        "and https://tok@github.com/o/r and ?access_token=A4#frag; ?page=3"
    )
    out = redact_url_credentials(text)
    for secret in ("p4ss", "K1", "T2", "S3", "tok@", "A4"):
        assert secret not in out
    assert "x=2" in out and "page=3" in out and "http://[redacted]@h:1/v1/responses" in out
    assert sorted(url_secrets("https://u:pw-123@h/?key=k-4567&page=2")) == ["k-4567", "pw-123"]


def test_formatters_redact_messages_and_tracebacks() -> None:
    record = logging.LogRecord(
        "httpx2", logging.INFO, __file__, 1, "HTTP Request: %s", ("http://a:b@c/?key=zz",), None
    )
    for formatter in (RedactingFormatter("%(message)s"), JsonFormatter()):
        line = formatter.format(record)
        assert "a:b" not in line and "key=zz" not in line and "[redacted]" in line
    try:
        raise ValueError("failed for http://a:secretpw@c/")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    assert "secretpw" not in RedactingFormatter("%(message)s").format(record)


def test_known_secrets_blank_exact_values() -> None:
    known = KnownSecrets()
    known.register("short", None, "", 'value-with-"quote"-0123')
    assert known.scrub("short") == "short"  # too short to be registered
    assert known.scrub('x value-with-"quote"-0123 y') == "x [redacted] y"
    assert known.scrub_bytes(b'"x value-with-\\"quote\\"-0123"') == b'"x [redacted]"'
    assert "0123" not in repr(known)


def test_config_read_redaction_rules() -> None:
    values = {
        "model_providers": {
            "p": {
                "base_url": "https://u:pw@h/v1",
                "http_headers": {"Accept": "x", "Anything": "y"},
                "env_http_headers": {"Authorization": "AUTH_VAR"},
                "env_key": "KEY_VAR",
                "experimental_bearer_token": "tok",
            }
        },
        "mcp_servers": {"m": {"env": {"API_TOKEN": "t"}, "bearer_token_env_var": "MCP_VAR"}},
    }
    out = redact(values)
    p = out["model_providers"]["p"]
    assert p["base_url"] == "https://[redacted]@h/v1"
    assert p["http_headers"] == {"Accept": "[redacted]", "Anything": "[redacted]"}
    assert p["env_http_headers"] == {"Authorization": "AUTH_VAR"}
    assert p["env_key"] == "KEY_VAR" and p["experimental_bearer_token"] == "[redacted]"
    assert out["mcp_servers"]["m"] == {
        "env": {"API_TOKEN": "[redacted]"},
        "bearer_token_env_var": "MCP_VAR",
    }
