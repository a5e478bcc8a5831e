"""Which model client serves a provider: ``make_client`` picks by ``ProviderInfo.wire_api``.

Owns that choice only. Must never: import a client module before it is chosen (the HTTP
clients load ``openai`` and the scripted one ``yaml``; startup time), or build requests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .config import ProviderInfo
from .events import ModelClient


def make_client(
    info: ProviderInfo,
    *,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
    stored_key: Callable[[], str | None] | None = None,
) -> ModelClient:
    """The client for `info.wire_api`. `api_key` overrides env/config lookup; `stored_key`
    returns the key saved by an API-key login, used (per request) by requires_openai_auth
    providers whose config and environment hold none."""
    if info.wire_api == "chat":
        from .chat_client import ChatClient

        return ChatClient(info, api_key=api_key, env=env, stored_key=stored_key)
    if info.wire_api == "scripted":
        from .scripted import ScriptedClient

        return ScriptedClient(info.script)
    from .responses_client import ResponsesClient

    return ResponsesClient(info, api_key=api_key, env=env, stored_key=stored_key)
