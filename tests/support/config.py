"""A home's ``config.toml`` pointing the server at the mock model: written here, once.

``write_config`` is the common case (one ``mock`` provider on the mock model's URL, the
approval policy and sandbox mode a test asks for, no retries). ``provider_table`` and
``config_toml`` build the rarer shapes (the built-in ``openai`` provider, a second provider,
no policy lines at all) from the same pieces. ``ENV`` carries the mock provider's API key to
the server. A ``None`` argument leaves its line out, so the server's default applies.
"""

from __future__ import annotations

from pathlib import Path

MOCK_KEY_VAR = "MOCK_API_KEY"
ENV = {MOCK_KEY_VAR: "sk-test-mock-key"}


def _line(key: str, value: str | int | None, *, quoted: bool = True) -> str:
    if value is None:
        return ""
    return f'{key} = "{value}"\n' if quoted else f"{key} = {value}\n"


def provider_table(
    key: str,
    base_url: str,
    *,
    name: str | None = "Mock provider",
    wire_api: str | None = "responses",
    env_key: str | None = MOCK_KEY_VAR,
    request_retries: int | None = 0,
    stream_retries: int | None = 0,
    extra: str = "",
) -> str:
    """``[model_providers.KEY]`` with the given fields; ``extra`` is raw TOML appended."""
    return (
        f"[model_providers.{key}]\n"
        + _line("name", name)
        + _line("base_url", base_url)
        + _line("wire_api", wire_api)
        + _line("env_key", env_key)
        + _line("request_max_retries", request_retries, quoted=False)
        + _line("stream_max_retries", stream_retries, quoted=False)
        + (f"{extra}\n" if extra else "")
    )


def config_toml(
    *tables: str,
    provider: str = "mock",
    approval: str | None = "never",
    sandbox: str | None = "danger-full-access",
    extra: str = "",
) -> str:
    """The top-level keys (model, provider, policies, ``extra`` raw TOML), then ``tables``."""
    head = (
        _line("model", "mock-model")
        + _line("model_provider", provider)
        + _line("approval_policy", approval)
        + _line("sandbox_mode", sandbox)
        + (f"{extra}\n" if extra else "")
    )
    return "\n".join([head, *tables])


def write_config(
    home: Path,
    base_url: str,
    *,
    approval: str | None = "never",
    sandbox: str | None = "danger-full-access",
    stream_retries: int = 0,
    request_retries: int = 0,
    wire_api: str = "responses",
    env_key: str = MOCK_KEY_VAR,
    extra: str = "",
    provider_extra: str = "",
) -> None:
    """``home/config.toml``: one ``mock`` provider at ``base_url``, used by the default model."""
    table = provider_table(
        "mock",
        base_url,
        wire_api=wire_api,
        env_key=env_key,
        request_retries=request_retries,
        stream_retries=stream_retries,
        extra=provider_extra,
    )
    text = config_toml(table, approval=approval, sandbox=sandbox, extra=extra)
    (home / "config.toml").write_text(text, encoding="utf-8")
