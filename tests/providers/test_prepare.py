"""The model client is built ahead of the first turn, in a background thread
(``ModelClients.prepare_in_background``), and the turn then uses that very client."""

from __future__ import annotations

from appserver.engine.providers.config import resolve_providers
from appserver.server.models import ModelClients


def _clients(env_key: str) -> ModelClients:
    providers = resolve_providers(
        {
            "model_providers": {
                "http": {
                    "name": "loopback",
                    "base_url": "http://127.0.0.1:9/v1",
                    "wire_api": "responses",
                    "env_key": env_key,
                }
            }
        }
    )
    return ModelClients(providers)


def test_prepared_client_is_the_one_a_turn_gets() -> None:
    clients = _clients("APPSERVER_TEST_PREPARE_KEY_UNSET")  # no key: prepare must not fail
    thread = clients.prepare_in_background("http")
    assert thread is not None
    thread.join(timeout=60)
    assert not thread.is_alive()
    prepared = clients._clients["http"]
    client, _budget = clients("http")
    assert client is prepared
    assert clients.prepare_in_background("http") is None  # already built


def test_nothing_to_prepare_for_scripted_or_unknown_providers() -> None:
    clients = _clients("APPSERVER_TEST_PREPARE_KEY_UNSET")
    assert clients.prepare_in_background("nope") is None
    scripted = [pid for pid, info in clients.providers.items() if info.wire_api == "scripted"]
    for pid in scripted:
        assert clients.prepare_in_background(pid) is None
