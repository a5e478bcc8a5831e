"""``Reply``: a handler's result with work that must follow it on the wire.

A handler returns ``Reply(result, after=...)`` when something it caused must reach the client
after the response (the ``turn/started`` of a turn the request began): the processor sends the
result, then awaits ``after()``. Owns only that shape; it must never send anything itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Reply:
    result: Any
    after: Callable[[], Awaitable[None]] | None = None
