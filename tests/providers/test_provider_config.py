"""Provider configuration: built-ins, [model_providers.*] parsing and merging, API keys."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from appserver.engine.providers import (
    ProviderConfigError,
    ProviderInfo,
    api_key,
    builtin_providers,
    missing_key_message,
    resolve_providers,
)
from appserver.engine.providers.config import OPENAI_DEFAULT_BASE_URL


def test_builtins_with_empty_env() -> None:
    providers = resolve_providers({}, env={})
    openai = providers["openai"]
    assert openai.base_url == OPENAI_DEFAULT_BASE_URL
    assert openai.env_key == "OPENAI_API_KEY"
    assert openai.requires_openai_auth and openai.wire_api == "responses"
    scripted = providers["scripted"]
    assert scripted.wire_api == "scripted" and scripted.script is None
    assert providers["ollama"].base_url == "http://localhost:11434/v1"
    assert providers["lmstudio"].base_url == "http://localhost:1234/v1"


def test_builtins_follow_env() -> None:
    env = {
        "OPENAI_BASE_URL": "http://proxy/v1",
        "APPSERVER_SCRIPT": "/tmp/demo.yaml",
        "CODEX_OSS_PORT": "9999",
    }
    providers = builtin_providers(env)
    assert providers["openai"].base_url == "http://proxy/v1"
    assert providers["scripted"].script == "/tmp/demo.yaml"
    assert providers["ollama"].base_url == "http://localhost:9999/v1"


def test_full_provider_table() -> None:
    config = {
        "model_provider": "myprov",
        "model_providers": {
            "myprov": {
                "name": "My provider",
                "base_url": "http://127.0.0.1:8080/v1",
                "env_key": "MYPROV_API_KEY",
                "env_key_instructions": "Ask Bob.",
                "wire_api": "chat",
                "query_params": {"api-version": "2025-04-01-preview"},
                "http_headers": {"X-Foo": "bar"},
                "env_http_headers": {"X-Bar": "BAR_ENV"},
                "request_max_retries": 0,
                "stream_max_retries": 1000,
                "stream_idle_timeout_ms": 1500,
                "requires_openai_auth": False,
                "supports_websockets": False,
                "models": ["m1", "m2"],
                "some_future_key": True,
            }
        },
    }
    info = resolve_providers(config, env={})["myprov"]
    assert info.id == "myprov" and info.name == "My provider"
    assert info.wire_api == "chat"
    assert info.request_max_retries == 0
    assert info.stream_max_retries == 100  # capped like Codex
    assert info.stream_idle_timeout_s == 1.5
    assert info.models == ["m1", "m2"]
    assert info.headers({"BAR_ENV": "baz"}) == {"X-Foo": "bar", "X-Bar": "baz"}
    assert info.headers({}) == {"X-Foo": "bar"}
    assert "Ask Bob." in missing_key_message(info) and "MYPROV_API_KEY" in missing_key_message(info)


def test_defaults() -> None:
    info = resolve_providers({"model_providers": {"p": {"base_url": "http://x/v1"}}}, env={})["p"]
    assert info.name == "p"
    assert (info.request_max_retries, info.stream_max_retries) == (4, 5)
    assert info.stream_idle_timeout_ms == 300_000
    assert info.wire_api == "responses" and info.models == []


@pytest.mark.parametrize(
    ("table", "fragment"),
    [
        ({"wire_api": "grpc"}, "model_providers.bad: wire_api"),
        ({"request_max_retries": -1}, "model_providers.bad: request_max_retries"),
        ({"stream_idle_timeout_ms": 0}, "stream_idle_timeout_ms"),
        ("not a table", "expected a table"),
    ],
)
def test_invalid_tables_name_provider_and_field(table: object, fragment: str) -> None:
    with pytest.raises(ProviderConfigError) as info:
        resolve_providers({"model_providers": {"bad": table}}, env={})
    assert fragment in str(info.value)


def test_configured_builtin_id_is_merged() -> None:
    config = {
        "model_providers": {
            "scripted": {"script": "demo.yaml"},
            "openai": {"models": ["gpt-x"]},
        }
    }
    providers = resolve_providers(config, env={})
    assert providers["scripted"].script == "demo.yaml"
    assert providers["scripted"].wire_api == "scripted"
    assert providers["openai"].models == ["gpt-x"]
    assert providers["openai"].env_key == "OPENAI_API_KEY"
    assert providers["openai"].base_url == OPENAI_DEFAULT_BASE_URL


def test_api_key_lookup() -> None:
    info = ProviderInfo(id="p", name="p", env_key="P_KEY")
    assert api_key(info, {"P_KEY": " sk-1 "}) == "sk-1"
    assert api_key(info, {"P_KEY": "   "}) is None
    assert api_key(info, {}) is None
    with_token = ProviderInfo(
        id="p", name="p", env_key="P_KEY", experimental_bearer_token=SecretStr("tok")
    )
    assert api_key(with_token, {"P_KEY": "sk-1"}) == "tok"
    assert api_key(ProviderInfo(id="p", name="p"), {"OPENAI_API_KEY": "sk-x"}) is None


def test_secrets_never_in_repr() -> None:
    info = resolve_providers(
        {
            "model_providers": {
                "p": {
                    "experimental_bearer_token": "tok-secret",
                    "http_headers": {"api-key": "hdr-secret"},
                    "query_params": {"key": "q-secret"},
                }
            }
        },
        env={},
    )["p"]
    for text in (repr(info), str(info), f"{info}", repr(info.experimental_bearer_token)):
        assert "secret" not in text, text
    assert "api-key" in repr(info)
