"""``parse_initialize`` reads the usual params by hand; it must always agree with the pydantic
``InitializeParams`` model: the same hello for params the model accepts, the same -32600
message for params it refuses (property-based, over camelCase and snake_case keys and values
of every JSON type)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from appserver.protocol.errors import RpcError
from appserver.protocol.handshake import ClientHello, _read_plain, parse_initialize
from appserver.protocol.runtime_params import InitializeParams
from appserver.protocol.validation import validate_params

_ADAPTER: TypeAdapter[InitializeParams] = TypeAdapter(InitializeParams)


def _by_model(raw: Any) -> ClientHello | RpcError:
    params = validate_params(InitializeParams, _ADAPTER, raw)
    if isinstance(params, RpcError):
        return params
    caps = params.capabilities
    return ClientHello(
        params.client_info.name,
        params.client_info.version,
        bool(caps and caps.experimental_api),
        frozenset(caps.opt_out_notification_methods or ()) if caps else frozenset(),
    )


def _same(a: ClientHello | RpcError, b: ClientHello | RpcError) -> bool:
    if isinstance(a, RpcError) and isinstance(b, RpcError):
        return a.to_wire() == b.to_wire()
    return a == b


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)


def _field(key: str, good: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Usually a plausible value, sometimes absent, sometimes anything at all."""
    return st.one_of(
        good.map(lambda v: {key: v}),
        good.map(lambda v: {key: v}),
        good.map(lambda v: {key: v}),
        st.just({}),
        values.map(lambda v: {key: v}),
    )


def _rarely(key: str, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), st.just({}), st.just({}), strategy.map(lambda v: {key: v}))


def _merged(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


text = st.text(max_size=12)
client_info = _merged(
    _field("name", text), _field("version", text), _rarely("title", text | st.none() | values)
)
capabilities = st.none() | _merged(
    _field("experimentalApi", st.booleans()),
    _rarely("experimental_api", st.booleans()),
    _field("optOutNotificationMethods", st.none() | st.lists(text | scalars, max_size=3)),
    _rarely("opt_out_notification_methods", st.lists(text, max_size=3)),
    _field("requestAttestation", st.booleans()),
    _rarely("other", values),
)
params = _merged(
    _field("clientInfo", client_info),
    _rarely("client_info", client_info),
    _field("capabilities", capabilities),
    _rarely("extra", values),
)


@settings(max_examples=1500, deadline=None)
@given(params | values)
def test_hand_reading_agrees_with_the_model(raw: Any) -> None:
    expected = _by_model(raw)
    assert _same(parse_initialize(raw), expected)
    if isinstance(raw, dict) and _read_plain(raw) is not None:
        assert _read_plain(raw) == expected  # the fast path never accepts what the model refuses


def test_the_usual_params_take_the_fast_path() -> None:
    raw = {
        "clientInfo": {"name": "codex_vscode", "title": "Codex", "version": "1.2.3"},
        "capabilities": {"experimentalApi": True, "optOutNotificationMethods": ["a", "b"]},
    }
    hello = _read_plain(raw)
    assert hello == ClientHello("codex_vscode", "1.2.3", True, frozenset({"a", "b"}))
    assert _by_model(raw) == hello
