"""The method registry: name → params model, result type, experimental flag, serialization
scope, handler.

Owns ``MethodSpec`` and ``MethodRegistry``. Each method's ``TypeAdapter`` is built once, on
the method's first call (most methods are never called in a session, and building validators
at startup delays the first reply), so that validation on the hot path is a single call. This
module does not import pydantic itself. The registry knows nothing of connections or
transports; handlers are opaque callables to it. A method's ``result`` names the wire type of
its reply (a ``TypedDict`` of ``protocol.wire_types``, or of ``protocol.wire_extra`` for the
experimental methods the schema leaves out); the handler's return annotation is that type, so
``mypy --strict`` checks the reply, and ``tests/unit/test_method_results.py`` checks the two
agree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel, TypeAdapter


class Scope(Enum):
    """How a request is scheduled relative to others (spec §3.12)."""

    INLINE = "inline"  # cheap and non-blocking: run on the dispatch loop itself, no task
    CONCURRENT = "concurrent"  # its own task
    THREAD = "thread"  # one at a time per ``params.threadId``, in arrival order
    # One at a time with every other SERIAL request, in arrival order: writes of server-wide
    # state (the API key) whose notifications must follow the order of the writes.
    SERIAL = "serial"


Handler = Callable[[Any, Any], Awaitable[Any]]  # (RequestContext, params model) -> result


@dataclass(slots=True)
class MethodSpec:
    name: str
    params_model: type[BaseModel]
    handler: Handler
    # The name of the reply's wire type ("ThreadStartResponse": ``wire_types``'s TypedDict).
    result: str | None = None
    experimental: bool = False
    scope: Scope = Scope.CONCURRENT
    # The schema types the params ``null`` (e.g. ``account/logout``): a request without
    # params, or with ``"params": null``, is validated as ``{}``.
    params_optional: bool = False
    _adapter: TypeAdapter[Any] | None = field(default=None, init=False, repr=False)

    @property
    def adapter(self) -> TypeAdapter[Any]:
        adapter = self._adapter
        if adapter is None:
            from pydantic import TypeAdapter

            adapter = self._adapter = TypeAdapter(self.params_model)
        return adapter


class MethodRegistry:
    def __init__(self) -> None:
        self._methods: dict[str, MethodSpec] = {}

    def register(
        self,
        name: str,
        params_model: type[BaseModel],
        handler: Handler,
        *,
        result: str | None = None,
        experimental: bool = False,
        scope: Scope = Scope.CONCURRENT,
        params_optional: bool = False,
    ) -> None:
        if name in self._methods:
            raise ValueError(f"method registered twice: {name}")
        self._methods[name] = MethodSpec(
            name, params_model, handler, result, experimental, scope, params_optional
        )

    def get(self, name: str) -> MethodSpec | None:
        return self._methods.get(name)

    def names(self) -> list[str]:
        return list(self._methods)

    def __iter__(self) -> Iterator[MethodSpec]:
        return iter(self._methods.values())

    def __contains__(self, name: object) -> bool:
        return name in self._methods
