"""Model-provider configuration: Codex's `[model_providers.<id>]` tables plus the built-ins.

Owns: `ProviderInfo` (validated, immutable), the built-in providers, `resolve_providers`
(built-ins + configured ones), and API-key lookup (`api_key`, `needs_key`,
`missing_key_message`).

Built-in ids:
  * `openai`    — Responses API at $OPENAI_BASE_URL or https://api.openai.com/v1, key from
                  $OPENAI_API_KEY, requires_openai_auth.
  * `scripted`  — offline, deterministic replies from the script file named by the `script`
                  key or $APPSERVER_SCRIPT (echo mode without one); see `scripted.py`.
  * `ollama`, `lmstudio` — local OpenAI-compatible servers over the Chat Completions API at
                  $CODEX_OSS_BASE_URL or http://localhost:$CODEX_OSS_PORT/v1 (ports 11434 and
                  1234 by default), no key.

A configured table whose id is a built-in one is MERGED onto the built-in, key by key (so
`[model_providers.scripted] script = "demo.yaml"` or `[model_providers.openai] models = [...]`
work). This differs from Codex, which reserves these ids; we follow the server's model
catalogue (`appserver.server.catalog`), which merges the same way, so both always agree on
what a provider is. It is the user's own config: pointing `openai` elsewhere is explicit.

Besides Codex's keys we accept `models` (an optional model catalogue for model/list) and
`script` (the script path when `wire_api = "scripted"`). Unknown keys are ignored so newer
Codex configs still load.

Never: log, repr or str() a credential — `experimental_bearer_token` is a SecretStr and header
values (which may hold keys, e.g. Azure's `api-key`) are masked in `repr`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from appserver.store.redaction import redact_url_credentials, secret_param, url_secrets

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
RETRY_CAP = 100
BUILTIN_PROVIDER_IDS = frozenset({"openai", "scripted", "ollama", "lmstudio"})

WireApi = Literal["responses", "chat", "scripted"]


class ProviderConfigError(ValueError):
    """A `[model_providers.*]` entry is invalid; the message names the provider and field."""


class ProviderInfo(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", defer_build=True)

    id: str
    name: str
    base_url: str | None = None
    env_key: str | None = None
    env_key_instructions: str | None = None
    experimental_bearer_token: SecretStr | None = None
    wire_api: WireApi = "responses"
    query_params: dict[str, str] = Field(default_factory=dict)
    http_headers: dict[str, str] = Field(default_factory=dict)
    env_http_headers: dict[str, str] = Field(default_factory=dict)
    request_max_retries: int = Field(default=4, ge=0)
    stream_max_retries: int = Field(default=5, ge=0)
    stream_idle_timeout_ms: int = Field(default=300_000, gt=0)
    requires_openai_auth: bool = False
    supports_websockets: bool = False  # accepted for compatibility; we always use HTTP
    models: list[str] = Field(default_factory=list)
    script: str | None = None

    @field_validator("request_max_retries", "stream_max_retries")
    @classmethod
    def _cap_retries(cls, value: int) -> int:
        # Codex caps both at 100 rather than rejecting larger values.
        return min(value, RETRY_CAP)

    @field_validator("query_params", "http_headers", mode="before")
    @classmethod
    def _stringify(cls, value: Any) -> Any:
        # TOML lets people write `{ "api-version" = 2024 }`; a URL/header needs text anyway.
        if isinstance(value, Mapping):
            return {str(k): str(v) for k, v in value.items()}
        return value

    @property
    def stream_idle_timeout_s(self) -> float:
        return self.stream_idle_timeout_ms / 1000.0

    def headers(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """Static `http_headers` plus `env_http_headers` whose env var is set and non-empty."""
        env = os.environ if env is None else env
        out = dict(self.http_headers)
        for header, var in self.env_http_headers.items():
            value = env.get(var, "").strip()
            if value:
                out[header] = value
        return out

    def __repr__(self) -> str:
        token = "***" if self.experimental_bearer_token is not None else None
        base_url = redact_url_credentials(self.base_url) if self.base_url else None
        return (
            f"ProviderInfo(id={self.id!r}, name={self.name!r}, base_url={base_url!r}, "
            f"wire_api={self.wire_api!r}, env_key={self.env_key!r}, "
            f"experimental_bearer_token={token!r}, "
            f"http_headers={sorted(self.http_headers)!r} (values hidden), "
            f"query_params={sorted(self.query_params)!r} (values hidden))"
        )

    __str__ = __repr__


def _oss_base_url(env: Mapping[str, str], default_port: int) -> str:
    explicit = env.get("CODEX_OSS_BASE_URL", "").strip()
    if explicit:
        return explicit
    port = env.get("CODEX_OSS_PORT", "").strip() or str(default_port)
    return f"http://localhost:{port}/v1"


def builtin_providers(env: Mapping[str, str] | None = None) -> dict[str, ProviderInfo]:
    env = os.environ if env is None else env
    openai_base = env.get("OPENAI_BASE_URL", "").strip() or OPENAI_DEFAULT_BASE_URL
    script = env.get("APPSERVER_SCRIPT", "").strip() or None
    return {
        "openai": ProviderInfo(
            id="openai",
            name="OpenAI",
            base_url=openai_base,
            env_key="OPENAI_API_KEY",
            env_key_instructions="Set OPENAI_API_KEY or log in with an API key.",
            wire_api="responses",
            requires_openai_auth=True,
        ),
        "scripted": ProviderInfo(
            id="scripted",
            name="Scripted (offline)",
            wire_api="scripted",
            script=script,
            models=["scripted"],
            request_max_retries=4,
            stream_max_retries=5,
        ),
        "ollama": ProviderInfo(
            id="ollama", name="Ollama", base_url=_oss_base_url(env, 11434), wire_api="chat"
        ),
        "lmstudio": ProviderInfo(
            id="lmstudio", name="LM Studio", base_url=_oss_base_url(env, 1234), wire_api="chat"
        ),
    }


def parse_provider(provider_id: str, table: Mapping[str, Any]) -> ProviderInfo:
    """Validate one `[model_providers.<id>]` table."""
    if not isinstance(table, Mapping):
        raise ProviderConfigError(f"model_providers.{provider_id}: expected a table")
    data = dict(table)
    data["id"] = provider_id
    data.setdefault("name", provider_id)
    try:
        return ProviderInfo.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<table>'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise ProviderConfigError(f"model_providers.{provider_id}: {problems}") from None


def resolve_providers(
    config: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> dict[str, ProviderInfo]:
    """Built-ins merged with `config["model_providers"]` (a parsed config.toml mapping).

    A table with a built-in id is merged onto that built-in (its keys win). Raises
    ProviderConfigError for an invalid entry.
    """
    providers = builtin_providers(env)
    tables = config.get("model_providers") or {}
    if not isinstance(tables, Mapping):
        raise ProviderConfigError("model_providers: expected a table of tables")
    for raw_id, table in tables.items():
        provider_id = str(raw_id)
        if not isinstance(table, Mapping):
            raise ProviderConfigError(f"model_providers.{provider_id}: expected a table")
        builtin = providers.get(provider_id)
        if builtin is not None:
            # exclude_unset keeps built-in defaults from masquerading as explicit settings;
            # the secret stays a SecretStr through the merge.
            base = {k: getattr(builtin, k) for k in builtin.model_fields_set}
            table = {**base, **table}
        providers[provider_id] = parse_provider(provider_id, table)
    return providers


def api_key(
    info: ProviderInfo, env: Mapping[str, str] | None = None, stored: str | None = None
) -> str | None:
    """The key to send as `Authorization: Bearer`, or None.

    The explicit `experimental_bearer_token` wins over `env_key` (configuration beats ambient
    environment); an empty or whitespace-only env value counts as unset. `stored` (the key an
    `account/login/start` saved in auth.json) is used last, and only by providers with
    `requires_openai_auth`: it is an OpenAI key and goes to no other provider.
    """
    if info.experimental_bearer_token is not None:
        token = info.experimental_bearer_token.get_secret_value().strip()
        if token:
            return token
    if info.env_key:
        env = os.environ if env is None else env
        value = env.get(info.env_key, "").strip()
        if value:
            return value
    if info.requires_openai_auth and stored is not None and stored.strip():
        return stored.strip()
    return None


def needs_key(info: ProviderInfo) -> bool:
    """Whether a turn against this provider must fail without a key (rather than send none)."""
    return bool(info.env_key) or info.requires_openai_auth


def missing_key_message(info: ProviderInfo) -> str:
    if not info.env_key:
        return (
            f"Not logged in: model provider '{info.id}' requires OpenAI authentication. "
            "Log in with an API key (account/login/start)."
        )
    msg = (
        f"Missing environment variable: `{info.env_key}` (API key for model provider '{info.id}')."
    )
    if info.env_key_instructions:
        msg += f" {info.env_key_instructions}"
    return msg


def credential_env_vars(
    providers: Mapping[str, ProviderInfo], config: Mapping[str, Any] | None = None
) -> frozenset[str]:
    """Every environment variable a provider (or MCP server) config names as holding a
    credential: ``env_key``, the values of ``env_http_headers`` and ``bearer_token_env_var``.
    Commands the agent runs never see them."""
    names: set[str] = set()
    for info in providers.values():
        if info.env_key:
            names.add(info.env_key)
        names.update(info.env_http_headers.values())
    for section in ("model_providers", "mcp_servers"):
        tables = (config or {}).get(section)
        if not isinstance(tables, Mapping):
            continue
        for table in tables.values():
            if not isinstance(table, Mapping):
                continue
            for key in ("env_key", "bearer_token_env_var"):
                if isinstance(table.get(key), str):
                    names.add(table[key])
            headers = table.get("env_http_headers")
            if isinstance(headers, Mapping):
                names.update(v for v in headers.values() if isinstance(v, str))
    return frozenset(n for n in names if n)


def credential_values(info: ProviderInfo, env: Mapping[str, str] | None = None) -> list[str]:
    """The credential values this provider sends (its key or bearer token, credential headers,
    its base URL's password and secret query values), to keep out of rollouts and logs."""
    values = [api_key(info, env) or ""]
    for header, value in info.headers(env).items():
        if header.lower() in ("authorization", "proxy-authorization") or secret_param(header):
            values += [value, value.partition(" ")[2]]
    if info.base_url:
        values += url_secrets(info.base_url)
    values += [v for k, v in info.query_params.items() if secret_param(k)]
    return [v for v in values if v]
