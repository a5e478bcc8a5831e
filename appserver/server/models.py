"""Model clients per provider, built from the config on first use and then reused.

Owns ``ModelClients``: provider id → (client, retry budget). One client per provider
keeps HTTP connections pooled and a scripted provider's replies consumed in order across
turns. Clients of providers with ``requires_openai_auth`` get the login store's key lookup and
call it on every request, so a cached client follows ``account/login/start`` and
``account/logout`` from the next turn on without being rebuilt here. It must never log an API
key; a missing key is the client's clear error at turn time.

``prepare`` builds the default provider's client ahead of the first turn, in a background
thread started after the ``initialize`` reply: ``import openai`` and the HTTP stack's first
use cost a fresh process a few hundred milliseconds that would otherwise land on the first
``turn/start``. It only imports and builds; it never sends anything, and whatever it cannot do
(a missing key) is left for the turn to report as before.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from collections.abc import Callable

from appserver.engine.providers.config import ProviderInfo
from appserver.engine.providers.events import ModelClient
from appserver.engine.turn_runner import RetryBudget

log = logging.getLogger("appserver.server")

StoredKey = Callable[[], str | None]

# Loaded by the HTTP stack on its first request, not on import (names of two generations of
# httpx's transport; a missing one is skipped). Importing them early changes nothing else.
_FIRST_REQUEST_MODULES = (
    "anyio._backends._asyncio",
    "h11",
    "httpcore",
    "httpcore2",
    "truststore",
)


class ModelClients:
    def __init__(
        self, providers: dict[str, ProviderInfo], *, stored_key: StoredKey | None = None
    ) -> None:
        self.providers = providers
        self._stored_key = stored_key
        self._clients: dict[str, ModelClient] = {}
        self._retired: list[ModelClient] = []
        self._closed = False  # a client ``prepare`` finishes after ``aclose`` is dropped

    def __call__(self, provider_id: str) -> tuple[ModelClient, RetryBudget]:
        info = self.providers.get(provider_id)
        if info is None:
            raise KeyError(provider_id)
        client = self._clients.get(provider_id)
        if client is None:
            # setdefault: a client ``prepare`` published meanwhile wins; both are unused yet.
            built = _make_client(info, self._stored_key)
            client = self._clients.setdefault(provider_id, built)
        return client, RetryBudget(info.request_max_retries, info.stream_max_retries)

    def update(self, providers: dict[str, ProviderInfo]) -> None:
        """Use ``providers`` from now on (a config write changed them): a provider whose
        settings changed or that is gone gets a new client on its next turn. The old client is
        closed at shutdown, not now: a turn may still be streaming through it."""
        for provider_id in list(self._clients):
            if providers.get(provider_id) != self.providers.get(provider_id):
                self._retired.append(self._clients.pop(provider_id))
        self.providers = providers

    def prepare_in_background(self, provider_id: str) -> threading.Thread | None:
        """Start building ``provider_id``'s HTTP client in a daemon thread (see the module
        docstring); None when there is nothing to prepare (unknown, scripted, or built)."""
        info = self.providers.get(provider_id)
        if info is None or info.wire_api == "scripted" or provider_id in self._clients:
            return None
        thread = threading.Thread(
            target=self._prepare, args=(provider_id, info), name="model-client-prepare"
        )
        thread.daemon = True
        thread.start()
        return thread

    def _prepare(self, provider_id: str, info: ProviderInfo) -> None:
        try:
            client = _make_client(info, self._stored_key)
            warm = getattr(client, "prepare", None)
            if warm is not None:
                warm()
            for name in _FIRST_REQUEST_MODULES:
                with contextlib.suppress(ImportError):
                    importlib.import_module(name)
        except Exception:
            # Only a head start: the first turn builds the client itself and reports.
            log.debug("preparing the model client for %s failed", provider_id, exc_info=True)
            return
        # Dropped when closed meanwhile, or when a config write changed the provider since.
        if not self._closed and self.providers.get(provider_id) is info:
            self._clients.setdefault(provider_id, client)

    async def aclose(self) -> None:
        self._closed = True
        for client in [*self._clients.values(), *self._retired]:
            await client.aclose()
        self._clients.clear()
        self._retired.clear()


def _make_client(info: ProviderInfo, stored_key: StoredKey | None) -> ModelClient:
    """Import a provider's client on first use: ``openai`` (and ``yaml`` for the scripted
    provider) would otherwise cost every server start, turn or no turn."""
    if info.wire_api == "scripted":
        from appserver.engine.providers.scripted import ScriptedClient

        return ScriptedClient(info.script)
    from appserver.engine.providers.factory import make_client

    return make_client(info, stored_key=stored_key if info.requires_openai_auth else None)
