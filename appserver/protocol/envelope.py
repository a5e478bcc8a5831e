"""The wire envelope: classifying decoded JSON into the four JSON-RPC message kinds.

Owns ``Request``, ``Notification``, ``Response`` and ``ErrorReply`` and ``classify``. The
protocol is JSON-RPC 2.0 without the ``"jsonrpc"`` member: it is accepted and ignored here and
never written. This module must never do I/O or decide replies; an unclassifiable message is
reported as ``None`` with a reason, and the caller logs and drops it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

RequestId = str | int

# RequestId is a JSON string or a 64-bit integer; bool is a subclass of int in Python.
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Request:
    id: RequestId
    method: str
    params: Any  # the raw params value; ``MISSING`` when the key was absent


@dataclass(frozen=True, slots=True)
class Notification:
    method: str
    params: Any


@dataclass(frozen=True, slots=True)
class Response:
    id: RequestId
    result: Any


@dataclass(frozen=True, slots=True)
class ErrorReply:
    id: RequestId
    code: int
    message: str
    data: Any


Message = Request | Notification | Response | ErrorReply


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def valid_request_id(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return _I64_MIN <= value <= _I64_MAX
    return isinstance(value, str)


def classify(obj: Any) -> Message | str:
    """Return the message, or a short reason why it is not one (for the log line)."""
    if not isinstance(obj, dict):
        return f"not a JSON object ({type(obj).__name__})"
    method = obj.get("method")
    if method is not None:
        if not isinstance(method, str):
            return "method is not a string"
        if "id" in obj:
            rid = obj["id"]
            if not valid_request_id(rid):
                return f"invalid request id {rid!r}"
            return Request(rid, method, obj.get("params", MISSING))
        return Notification(method, obj.get("params", MISSING))
    if "id" in obj:
        rid = obj["id"]
        if not valid_request_id(rid):
            return f"invalid response id {rid!r}"
        if "result" in obj:
            return Response(rid, obj["result"])
        err = obj.get("error")
        if isinstance(err, dict):
            code = err.get("code")
            message = err.get("message")
            return ErrorReply(
                rid,
                code if isinstance(code, int) and not isinstance(code, bool) else 0,
                message if isinstance(message, str) else "",
                err.get("data"),
            )
    return "object is not a request, notification or response"
