"""The model catalogue and provider selection, derived from the loaded config.

Owns which provider and model are the defaults (the ``scripted`` provider when nothing is
configured, so a fresh install runs offline), the list ``model/list`` pages through, and
whether an API key is present for ``account/read``. It must never read or return an API key's
value, only whether one is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from appserver.server.config import LoadedConfig

SCRIPTED_PROVIDER = "scripted"
SCRIPTED_MODEL = "scripted"
BUILTIN_PROVIDERS: dict[str, dict[str, Any]] = {
    "openai": {"name": "OpenAI", "env_key": "OPENAI_API_KEY", "requires_openai_auth": True},
    SCRIPTED_PROVIDER: {"name": "Scripted (offline replay)", "models": [SCRIPTED_MODEL]},
}
_EFFORTS = [
    {"reasoningEffort": "low", "description": "Fast responses with lighter reasoning"},
    {"reasoningEffort": "medium", "description": "Balances speed and reasoning depth"},
    {"reasoningEffort": "high", "description": "Greater reasoning depth for complex problems"},
]


@dataclass(frozen=True)
class Defaults:
    provider: str
    model: str


def providers(config: LoadedConfig) -> dict[str, dict[str, Any]]:
    merged = {k: dict(v) for k, v in BUILTIN_PROVIDERS.items()}
    for name, table in (config.get("model_providers") or {}).items():
        if name in merged:
            merged[name] = {**merged[name], **table}
        else:
            merged[name] = dict(table)
    return merged


def defaults(config: LoadedConfig) -> Defaults:
    provider = config.get("model_provider")
    model = config.get("model")
    if provider is None:
        provider = "openai" if model else SCRIPTED_PROVIDER
    if model is None:
        models = providers(config).get(provider, {}).get("models") or []
        model = (
            models[0]
            if models
            else (SCRIPTED_MODEL if provider == SCRIPTED_PROVIDER else "gpt-5.1-codex")
        )
    return Defaults(provider, model)


def model_slugs(config: LoadedConfig, provider: str | None = None) -> list[str]:
    d = defaults(config)
    chosen = provider or d.provider
    slugs: list[str] = []
    if chosen == d.provider:
        slugs.append(d.model)
    for slug in providers(config).get(chosen, {}).get("models") or []:
        if isinstance(slug, str) and slug not in slugs:
            slugs.append(slug)
    return slugs


def model_entry(slug: str, provider_name: str, is_default: bool) -> dict[str, Any]:
    return {
        "id": slug,
        "model": slug,
        "upgrade": None,
        "upgradeInfo": None,
        "availabilityNux": None,
        "displayName": slug,
        "description": f"{slug} via {provider_name}",
        "hidden": False,
        "supportedReasoningEfforts": _EFFORTS,
        "defaultReasoningEffort": "medium",
        "inputModalities": ["text", "image"],
        "supportsPersonality": False,
        "additionalSpeedTiers": [],
        "serviceTiers": [],
        "defaultServiceTier": None,
        "isDefault": is_default,
    }


def api_key_present(config: LoadedConfig, provider: str | None = None) -> bool | None:
    """True/False when the provider needs a key and it is (not) set; None when it needs none."""
    info = providers(config).get(provider or defaults(config).provider, {})
    env_key = info.get("env_key")
    if info.get("experimental_bearer_token"):
        return True
    if not env_key:
        return None
    return bool(os.environ.get(env_key))
