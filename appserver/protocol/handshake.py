"""``initialize`` params: what the handshake needs from them, read without loading pydantic.

Owns ``ClientHello`` and ``parse_initialize``. The params every real client sends (camelCase
keys, values of the right JSON types) are read by hand, so the first reply of a freshly
spawned server does not wait for pydantic and the protocol models to import (about half of
startup). Anything else — snake_case spellings, wrong types, missing fields — goes through the
pydantic ``InitializeParams`` model, so the errors are worded exactly as for every other
method. The hand-read result must always equal the model's; a property test holds it to that.

It must never accept params the model would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from appserver.protocol.errors import RpcError
from appserver.protocol.validation import precheck_params, validate_checked

if TYPE_CHECKING:
    from pydantic import TypeAdapter

# The model's field names: populate_by_name lets a client use them instead of the aliases.
_SNAKE_TOP = frozenset({"client_info"})
_SNAKE_CAPABILITIES = frozenset(
    {"experimental_api", "opt_out_notification_methods", "request_attestation"}
)


@dataclass(frozen=True, slots=True)
class ClientHello:
    name: str
    version: str
    experimental_api: bool = False
    opt_out_notification_methods: frozenset[str] = frozenset()


def parse_initialize(raw: Any) -> ClientHello | RpcError:
    """The client's hello, or the -32600 error for its params."""
    error = precheck_params("InitializeParams", raw)
    if error is not None:
        return error
    hello = _read_plain(raw)
    if hello is not None:
        return hello
    params = validate_checked(_initialize_adapter(), raw)
    if isinstance(params, RpcError):
        return params
    caps = params.capabilities
    return ClientHello(
        params.client_info.name,
        params.client_info.version,
        bool(caps and caps.experimental_api),
        frozenset(caps.opt_out_notification_methods or ()) if caps else frozenset(),
    )


def _read_plain(raw: dict[str, Any]) -> ClientHello | None:
    """The hello when ``raw`` has the usual shape; None means "ask the model"."""
    info = raw.get("clientInfo")
    if type(info) is not dict or not _SNAKE_TOP.isdisjoint(raw):
        return None
    name, version, title = info.get("name"), info.get("version"), info.get("title")
    if type(name) is not str or type(version) is not str:
        return None
    if title is not None and type(title) is not str:
        return None
    caps = raw.get("capabilities")
    if caps is None:
        return ClientHello(name, version)
    if type(caps) is not dict or not _SNAKE_CAPABILITIES.isdisjoint(caps):
        return None
    experimental = caps.get("experimentalApi", False)
    attestation = caps.get("requestAttestation", False)
    if type(experimental) is not bool or type(attestation) is not bool:
        return None
    opt_out = caps.get("optOutNotificationMethods")
    if opt_out is None:
        methods: frozenset[str] = frozenset()
    elif type(opt_out) is list and all(type(m) is str for m in opt_out):
        methods = frozenset(opt_out)
    else:
        return None
    return ClientHello(name, version, experimental, methods)


_adapter: TypeAdapter[Any] | None = None


def _initialize_adapter() -> TypeAdapter[Any]:
    global _adapter
    if _adapter is None:
        from pydantic import TypeAdapter

        from appserver.protocol.runtime_params import InitializeParams

        _adapter = TypeAdapter(InitializeParams)
    return _adapter
