"""JSON-RPC error codes and the one exception type handlers raise.

Owns the numeric codes the Codex app-server uses and ``RpcError``. It must never format
tracebacks or exception reprs into messages: whatever a ``RpcError`` carries goes on the wire.
"""

from __future__ import annotations

from typing import Any

INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
OVERLOADED = -32001

OVERLOADED_MESSAGE = "Server overloaded; retry later."

# The -32001 reply's ``data``: Codex's Python SDK retries an overload only when ``data`` marks
# it (``codex_error_info``), and the reference's bare -32001 is never retried
# (known-failures.md #5). Code and message stay the reference's.
OVERLOADED_DATA = {"codex_error_info": "server_overloaded"}


class RpcError(Exception):
    """An error reply: raised by handlers, turned into ``{"error": ...}`` in one place."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_wire(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            err["data"] = self.data
        return err


def invalid_request(message: str, data: Any = None) -> RpcError:
    return RpcError(INVALID_REQUEST, message, data)


def invalid_params(message: str, data: Any = None) -> RpcError:
    return RpcError(INVALID_PARAMS, message, data)


def internal_error(message: str, data: Any = None) -> RpcError:
    return RpcError(INTERNAL_ERROR, message, data)
