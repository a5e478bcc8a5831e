"""Reading loosely typed JSON from model streams: a field is used only if it has the right type.

Owns the two coercions every stream mapper shares. Must never: raise, or import anything heavy.
"""

from __future__ import annotations


def as_str(value: object) -> str | None:
    """``value`` if it is a string, else None."""
    return value if isinstance(value, str) else None


def as_int(value: object) -> int:
    """``value`` if it is an int (not a bool), else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
