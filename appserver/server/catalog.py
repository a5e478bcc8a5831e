"""The model catalogue and the default provider and model, derived from the loaded config.

Owns ``Catalog``: which provider and model are the defaults (the ``scripted`` provider when
nothing is configured, so a fresh install runs offline), the list ``model/list`` pages
through, whether an API key is present for ``account/read``, and each model's usable context
window (``thread/tokenUsage/updated.modelContextWindow``). Providers themselves are
resolved once by ``engine.providers.config.resolve_providers``; this module only reads them.
It must never return an API key's value, only whether one is set.
"""

from __future__ import annotations

from typing import Any

from appserver.engine.providers.config import ProviderInfo, api_key
from appserver.server.config import LoadedConfig

SCRIPTED_PROVIDER = "scripted"
SCRIPTED_MODEL = "scripted"
OPENAI_DEFAULT_MODEL = "gpt-5.1-codex"
_EFFORTS = [
    {"reasoningEffort": "low", "description": "Fast responses with lighter reasoning"},
    {"reasoningEffort": "medium", "description": "Balances speed and reasoning depth"},
    {"reasoningEffort": "high", "description": "Greater reasoning depth for complex problems"},
]

# Context windows (tokens) of well-known model families, by slug prefix (the longest prefix
# wins). Any other model gets Codex's fallback metadata, 272 000 tokens. As in Codex, a
# client is told 95 % of the window (the rest is headroom for the system prompt and tool
# schemas): 258 400 for an unknown model. ``model_context_window`` in config.toml replaces
# the window of every model (and is reported at 95 % too).
FALLBACK_CONTEXT_WINDOW = 272_000
EFFECTIVE_CONTEXT_PERCENT = 95
_CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 272_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}


def context_window(model: str, configured: int | None = None) -> int:
    """The usable context window reported for ``model`` (see ``_CONTEXT_WINDOWS``)."""
    window = configured
    if window is None:
        prefixes = [p for p in _CONTEXT_WINDOWS if model.startswith(p)]
        window = _CONTEXT_WINDOWS[max(prefixes, key=len)] if prefixes else FALLBACK_CONTEXT_WINDOW
    return window * EFFECTIVE_CONTEXT_PERCENT // 100


class Catalog:
    def __init__(self, config: LoadedConfig, providers: dict[str, ProviderInfo]) -> None:
        self.refresh(config, providers)

    def refresh(self, config: LoadedConfig, providers: dict[str, ProviderInfo]) -> None:
        """Derive everything again from ``config`` (after a config write reloaded it)."""
        self.providers = providers
        provider = config.get("model_provider")
        model = config.get("model")
        if provider is None:
            provider = "openai" if model else SCRIPTED_PROVIDER
        if model is None:
            info = providers.get(provider)
            listed = info.models if info is not None else []
            model = (
                listed[0]
                if listed
                else (SCRIPTED_MODEL if provider == SCRIPTED_PROVIDER else OPENAI_DEFAULT_MODEL)
            )
        self.default_provider: str = str(provider)
        self.default_model: str = str(model)
        configured = config.get("model_context_window")
        self.configured_context_window: int | None = (
            configured if isinstance(configured, int) and configured > 0 else None
        )

    def context_window(self, model: str) -> int:
        return context_window(model, self.configured_context_window)

    def has(self, provider: str) -> bool:
        return provider in self.providers

    def display_name(self, provider: str) -> str:
        info = self.providers.get(provider)
        return info.name if info is not None else provider

    def model_slugs(self, provider: str | None = None) -> list[str]:
        chosen = provider or self.default_provider
        slugs = [self.default_model] if chosen == self.default_provider else []
        info = self.providers.get(chosen)
        for slug in info.models if info is not None else []:
            if slug not in slugs:
                slugs.append(slug)
        return slugs

    def api_key_present(self, provider: str | None = None) -> bool | None:
        """True/False when the provider needs a key and it is (not) set; None if it needs none."""
        info = self.providers.get(provider or self.default_provider)
        if info is None or (info.env_key is None and info.experimental_bearer_token is None):
            return None
        return api_key(info) is not None

    def requires_openai_auth(self, provider: str | None = None) -> bool:
        info = self.providers.get(provider or self.default_provider)
        return bool(info is not None and info.requires_openai_auth)


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
