"""The engine's domain errors on the wire.

Owns ``to_rpc`` (an ``EngineError`` as the JSON-RPC error the reference sends) and
``mapped`` (a handler whose engine errors leave as those replies). Every handler group that
calls the engine registers its handlers through ``mapped``. It must never change a message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from appserver.engine.errors import EngineError, NotSteerable
from appserver.protocol.errors import RpcError, invalid_request

H = TypeVar("H", bound=Callable[..., Awaitable[Any]])


def to_rpc(exc: EngineError) -> RpcError:
    """-32600 with the engine's message. A refusal to add input to a compaction turn carries
    a ``TurnError`` whose ``codexErrorInfo`` is the schema's ``activeTurnNotSteerable``:
    that tag, not the message, is what clients test for."""
    if isinstance(exc, NotSteerable):
        error = {
            "message": exc.message,
            "codexErrorInfo": {"activeTurnNotSteerable": {"turnKind": exc.turn_kind}},
            "additionalDetails": None,
        }
        return invalid_request(exc.message, error)
    return invalid_request(exc.message)


def mapped(handler: H) -> H:
    """``handler``, with the engine's errors raised as their JSON-RPC errors."""

    @wraps(handler)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await handler(*args, **kwargs)
        except EngineError as exc:
            raise to_rpc(exc) from None

    return call  # type: ignore[return-value]
