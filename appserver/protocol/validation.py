"""Params validation: the checks every request's params pass, and the -32600 wording.

Owns ``validate_params``: missing or non-object params, nesting past ``MAX_PARAMS_DEPTH``, then
the method's prebuilt ``TypeAdapter``; a failure becomes ``-32600 "Invalid request: …"`` worded
as the reference words its serde errors. pydantic is imported only when a params error has to
be described, so the modules on the path to the first reply do not load it.

It must never let a pydantic error, a repr or a traceback reach the wire.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appserver.protocol.envelope import MISSING
from appserver.protocol.errors import RpcError, invalid_request

if TYPE_CHECKING:
    from pydantic import BaseModel, TypeAdapter

# Deeper params are refused: a handler may echo part of its params (``mock/experimentalMethod``
# does), and replies nested past orjson's 254-level limit could not be encoded.
MAX_PARAMS_DEPTH = 128


def deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays/objects more than ``limit`` levels (iterative)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, dict | list):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def precheck_params(model_name: str, raw: Any) -> RpcError | None:
    """The error for params that are missing, not an object, or nested too deep; else None."""
    if raw is MISSING or raw is None:
        return invalid_request("Invalid request: missing field `params`")
    if not isinstance(raw, dict):
        kind = "sequence" if isinstance(raw, list) else "value"
        return invalid_request(
            f"Invalid request: invalid type: {kind}, expected struct {model_name}"
        )
    if deeper_than(raw, MAX_PARAMS_DEPTH):
        return invalid_request(
            f"Invalid request: params nested deeper than {MAX_PARAMS_DEPTH} levels"
        )
    return None


def validate_params(model: type[BaseModel], adapter: TypeAdapter[Any], raw: Any) -> Any:
    """The params model, or the -32600 error worded as the reference words it."""
    error = precheck_params(model.__name__, raw)
    if error is not None:
        return error
    return validate_checked(adapter, raw)


def validate_checked(adapter: TypeAdapter[Any], raw: Any) -> Any:
    """``adapter``'s model of params that passed ``precheck_params``, or the -32600 error."""
    try:
        return adapter.validate_python(raw)
    except Exception as exc:
        from pydantic import ValidationError

        from appserver.protocol.base import describe_validation_error

        if not isinstance(exc, ValidationError):
            raise
        return invalid_request(f"Invalid request: {describe_validation_error(exc)}")
