"""The base class of every params model, and the serde-style validation messages.

Owns ``WireModel`` (camelCase aliases, unknown fields ignored, no silent coercion) and
``describe_validation_error``, which words a pydantic error the way the reference server words
its serde errors (``missing field `x```, ``invalid type: integer `1`, expected a string``).
It must never include tracebacks or Python reprs of internal objects in a message.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """Incoming params: camelCase on the wire, extra keys ignored (as upstream), strict types."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        strict=True,
        frozen=True,
        # Build each model's validator on first use, not at import: most methods are never
        # called in a session, and startup time matters.
        defer_build=True,
    )


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "bool_type": "a boolean",
    "float_type": "a number",
    "list_type": "a sequence",
    "dict_type": "a map",
    "model_type": "a map",
    "model_attributes_type": "a map",
    "literal_error": "one of the allowed values",
    "enum": "one of the allowed values",
}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        shown = value if len(value) <= 80 else value[:77] + "..."
        return f"string {orjson.dumps(shown).decode()}"
    if isinstance(value, list):
        return "sequence"
    if isinstance(value, dict):
        return "map"
    return "value"


def describe_validation_error(exc: ValidationError) -> str:
    """The first error, worded like serde; the field path is appended for nested fields."""
    errors = exc.errors(include_url=False)
    if not errors:
        return "invalid params"
    err = errors[0]
    loc = [str(p) for p in err.get("loc", ())]
    kind = err.get("type", "")
    if kind == "missing":
        text = f"missing field `{loc[-1] if loc else '?'}`"
        loc = loc[:-1]
    elif kind in _EXPECTED:
        text = f"invalid type: {_json_kind(err.get('input'))}, expected {_EXPECTED[kind]}"
        if kind in ("literal_error", "enum"):
            text = f"unknown variant {_json_kind(err.get('input'))}, {err.get('msg', '')}"
    else:
        text = str(err.get("msg", "invalid value"))
    # serde names no path for a top-level field; a nested one gets its dotted path.
    if len(loc) > 1 or (kind == "missing" and loc):
        text += f" at `{'.'.join(loc)}`"
    return text
