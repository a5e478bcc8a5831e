"""The engine's domain errors: what it refuses, in its own words.

Owns ``EngineError`` (a request the engine refuses because of what the client asked: an
unknown thread, a turn already running, a bad setting) and ``NotSteerable`` (input for a turn
that takes none: a compaction). The engine raises these and never a JSON-RPC error; the
server maps them to the wire (``server.engine_errors``: -32600 with the message, and the
schema's ``activeTurnNotSteerable`` data for ``NotSteerable``). The message is what the
client reads, so it must never hold a traceback or a secret.
"""

from __future__ import annotations


class EngineError(Exception):
    """The client's request cannot be done (the server answers -32600 with ``message``)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotSteerable(EngineError):
    """Input for the active turn, which takes none (a ``compact`` turn)."""

    def __init__(self, message: str, turn_kind: str) -> None:
        super().__init__(message)
        self.turn_kind = turn_kind
