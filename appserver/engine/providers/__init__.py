"""Model providers: everything between the engine and a model.

Owns: provider configuration (`config`), the normalized event stream and request types
(`events`), the HTTP clients over the `openai` package (`responses_client` with
`responses_mapper`, `chat_client` with `chat_translation`, both on `openai_http` and
`http_errors`), the offline scripted client (`scripted`, replaying a `script`) and the choice
between them (`factory`). The engine depends only on what is re-exported here.

Never: run tools, touch threads/turns, emit protocol notifications, or retry — one
`stream()` call is one attempt; the engine owns retries and reports them.
"""

import importlib
from typing import TYPE_CHECKING, Any

from .config import (
    ProviderConfigError,
    ProviderInfo,
    api_key,
    builtin_providers,
    missing_key_message,
    resolve_providers,
)
from .events import (
    CodexErrorInfo,
    Completed,
    MessageDone,
    MessageStarted,
    ModelClient,
    ModelEvent,
    ModelRequest,
    ProviderError,
    ReasoningContentDelta,
    ReasoningDone,
    ReasoningStarted,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    TextDelta,
    ToolCall,
    Usage,
    error_for_status,
    too_many_failed_attempts,
)

if TYPE_CHECKING:
    from .chat_client import ChatClient
    from .factory import make_client
    from .responses_client import ResponsesClient
    from .script import ScriptError
    from .scripted import ScriptedClient

# The clients load on first use: the HTTP ones import ``openai`` and the scripted one ``yaml``,
# which a server that has not run a turn yet does not need (startup time).
_LAZY = {
    "ChatClient": "chat_client",
    "ResponsesClient": "responses_client",
    "make_client": "factory",
    "ScriptedClient": "scripted",
    "ScriptError": "script",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


__all__ = [
    "ChatClient",
    "CodexErrorInfo",
    "Completed",
    "MessageDone",
    "MessageStarted",
    "ModelClient",
    "ModelEvent",
    "ModelRequest",
    "ProviderConfigError",
    "ProviderError",
    "ProviderInfo",
    "ReasoningContentDelta",
    "ReasoningDone",
    "ReasoningStarted",
    "ReasoningSummaryDelta",
    "ReasoningSummaryPartAdded",
    "ResponsesClient",
    "ScriptError",
    "ScriptedClient",
    "TextDelta",
    "ToolCall",
    "Usage",
    "api_key",
    "builtin_providers",
    "error_for_status",
    "make_client",
    "missing_key_message",
    "resolve_providers",
    "too_many_failed_attempts",
]
