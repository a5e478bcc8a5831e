"""Model clients per provider, built from the config on first use and then reused.

Owns ``ModelClients``: provider id → (client, retry budget). One client per provider
keeps HTTP connections pooled and a scripted provider's replies consumed in order across
turns. Clients of providers with ``requires_openai_auth`` get the login store's key lookup and
call it on every request, so a cached client follows ``account/login/start`` and
``account/logout`` from the next turn on without being rebuilt here. It must never log an API
key; a missing key is the client's clear error at turn time.
"""

from __future__ import annotations

from collections.abc import Callable

from appserver.engine.providers.config import ProviderInfo
from appserver.engine.providers.events import ModelClient
from appserver.engine.turn_runner import RetryBudget

StoredKey = Callable[[], str | None]


class ModelClients:
    def __init__(
        self, providers: dict[str, ProviderInfo], *, stored_key: StoredKey | None = None
    ) -> None:
        self.providers = providers
        self._stored_key = stored_key
        self._clients: dict[str, ModelClient] = {}

    def __call__(self, provider_id: str) -> tuple[ModelClient, RetryBudget]:
        info = self.providers.get(provider_id)
        if info is None:
            raise KeyError(provider_id)
        client = self._clients.get(provider_id)
        if client is None:
            client = self._clients[provider_id] = _make_client(info, self._stored_key)
        return client, RetryBudget(info.request_max_retries, info.stream_max_retries)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _make_client(info: ProviderInfo, stored_key: StoredKey | None) -> ModelClient:
    """Import a provider's client on first use: ``openai`` (and ``yaml`` for the scripted
    provider) would otherwise cost every server start, turn or no turn."""
    if info.wire_api == "scripted":
        from appserver.engine.providers.scripted import ScriptedClient

        return ScriptedClient(info.script)
    from appserver.engine.providers.factory import make_client

    return make_client(info, stored_key=stored_key if info.requires_openai_auth else None)
