"""``[mcp_servers.NAME]`` parsing (engine/mcp/config.py): Codex's keys and defaults, one
warning per bad entry naming the key and never a value, ``required`` bad entries as errors,
the headers and environment built at connect time, a Chat Completions model's flat names."""

from __future__ import annotations

import json

import pytest

from appserver.engine.errors import EngineError
from appserver.engine.mcp.config import parse_server, parse_servers, thread_servers
from appserver.engine.mcp.turn import ThreadMcp
from appserver.engine.providers.chat_translation import responses_tools_to_chat
from appserver.engine.providers.events import ToolCall


def test_defaults_and_fields() -> None:
    cfg = parse_server("local", {"command": "srv", "args": ["-v"], "env": {"A": "1"}})
    assert cfg.transport == "stdio" and cfg.args == ("-v",)
    assert cfg.startup_timeout_s == 10 and cfg.tool_timeout_s == 60
    assert cfg.enabled and not cfg.required and cfg.approval_mode == "auto"
    assert cfg.process_env({"B": "2"}) == {"A": "1"}
    assert "A" not in repr(cfg) and "'1'" not in repr(cfg)
    passed = parse_server("p", {"command": "srv", "env_vars": ["B", "C"]})
    assert passed.process_env({"B": "2"}) == {"B": "2"}


def test_http_headers_and_token() -> None:
    cfg = parse_server(
        "docs",
        {
            "url": "https://user:pw@mcp.example.com:8443/mcp?x=1",
            "bearer_token_env_var": "TOKEN",
            "http_headers": {"X-A": "a"},
            "env_http_headers": {"X-B": "B_VAR"},
            "startup_timeout_ms": 2500,
            "tools": {"search": {"approval_mode": "approve"}},
        },
    )
    assert cfg.request_headers({"TOKEN": "t", "B_VAR": "b"}) == {
        "X-A": "a",
        "X-B": "b",
        "Authorization": "Bearer t",
    }
    assert cfg.missing_token({}) == "TOKEN" and cfg.missing_token({"TOKEN": "t"}) is None
    assert cfg.http_origin() == "https://mcp.example.com:8443"
    assert cfg.auth_status() == "bearerToken" and cfg.startup_timeout_s == 2.5
    assert cfg.approval_for("search") == "approve" and cfg.approval_for("other") == "auto"
    assert "pw" not in repr(cfg) and "X-A" not in repr(cfg)


def test_tool_filters() -> None:
    cfg = parse_server("s", {"command": "x", "enabled_tools": ["a", "b"], "disabled_tools": ["b"]})
    assert [t for t in ("a", "b", "c") if cfg.allows_tool(t)] == ["a"]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ({"args": []}, "exactly one of `command`"),
        ({"command": "x", "url": "http://h/mcp"}, "exactly one of"),
        ({"command": "x", "bearer_token_env_var": "T"}, "takes no `bearer_token_env_var`"),
        ({"url": "ftp://h"}, "`url` must be"),
        ({"command": "x", "args": "a b"}, "`args` must be a list"),
        ({"command": "x", "env": {"K": 1}}, "`env` must be a table of strings"),
        ({"command": "x", "startup_timeout_sec": -1}, "`startup_timeout_sec`"),
        ({"command": "x", "default_tools_approval_mode": "maybe"}, "one of auto"),
        ({"command": "x", "colour": "red"}, "unknown key `colour`"),
        ({"command": "x", "cwd": "relative"}, "absolute"),
        ("not a table", "must be a table"),
    ],
)
def test_bad_entries_warn_and_are_skipped(entry: object, words: str) -> None:
    parsed = parse_servers({"bad": entry, "good": {"command": "ok"}})
    assert list(parsed.servers) == ["good"]
    assert len(parsed.warnings) == 1 and words in parsed.warnings[0]
    assert "`bad`" in parsed.warnings[0] and not parsed.errors


def test_secret_values_never_in_warnings() -> None:
    parsed = parse_servers({"bad": {"env": {"TOKEN": "hunter2"}, "args": ["x"]}})
    assert "hunter2" not in json.dumps(parsed.warnings)


def test_required_bad_entry_is_an_error() -> None:
    parsed = parse_servers({"must": {"required": True, "args": []}})
    assert parsed.errors and not parsed.warnings and not parsed.servers


def test_bad_name_and_bad_table() -> None:
    assert "the name" in parse_servers({"a.b c": {"command": "x"}}).warnings[0]
    assert parse_servers(["x"]).warnings


def test_thread_servers_refuse_bad_entries() -> None:
    servers = thread_servers({"mcp_servers": {"mine": {"command": "x"}}})
    assert [s.name for s in servers] == ["mine"] and servers[0].scope == "thread"
    with pytest.raises(EngineError) as info:
        thread_servers({"mcp_servers": {"mine": {"url": 3}}})
    assert "config.mcp_servers.mine" in info.value.message


def test_chat_names_flatten_and_resolve() -> None:
    namespace = {
        "type": "namespace",
        "name": "mcp__local",
        "tools": [{"type": "function", "name": "echo", "parameters": {"type": "object"}}],
    }
    chat = responses_tools_to_chat([namespace])
    assert chat[0]["function"]["name"] == "mcp__local__echo"
    view = ThreadMcp.__new__(ThreadMcp)
    call = ToolCall("c1", "mcp__local__echo", "{}", "function", {})
    assert view.target(call) == ("local", "echo")
    spaced = ToolCall("c2", "echo", "{}", "function", {"namespace": "mcp__local"})
    assert view.target(spaced) == ("local", "echo")
    assert view.target(ToolCall("c3", "shell_command", "{}", "function", {})) is None


def test_secret_values_for_redaction() -> None:
    cfg = parse_server(
        "s",
        {
            "command": "x",
            "env": {"API_TOKEN": "tok-123456789", "LOG_DIR": "/var/log/x"},
            "env_vars": ["PASSED"],
        },
    )
    secrets = cfg.secret_values({"PASSED": "passed-secret-value"})
    assert "tok-123456789" in secrets and "passed-secret-value" in secrets
    assert "/var/log/x" not in secrets
