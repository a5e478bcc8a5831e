"""Wrong types in every params field of every implemented method.

Covers: the method list and each method's fields come from the live registry
(``App(...).registry``, each spec's ``params_model.model_fields``), so a method added later is
fuzzed without touching this file. In-process, every field of every method (and of
``initialize``) gets each of a fixed set of values of every JSON type — null, booleans, edge
integers, floats, empty and long strings, arrays, objects, nesting deeper than the encoder's
limit — on top of otherwise valid params (a real thread id where one is needed). Over all
three transports, hypothesis picks a method, a field and any JSON value. Every request gets
exactly one reply, a result or -32600 (never -32603, never a traceback), and the connection
keeps answering. ``APPSERVER_FULL_SOAK=1`` raises the hypothesis examples from 150 to 3000
per transport.
"""

from __future__ import annotations

import itertools
import json
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appserver.protocol.runtime_params import InitializeParams
from appserver.server.app import App
from appserver.server.config import load_config
from tests.harness import TRANSPORTS
from tests.reliability.conftest import scaled
from tests.reliability.fuzz_support import Session, json_values, reply_key

EXAMPLES = scaled(150, 3000)


def _registry_fields() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        app = App(load_config(Path(tmp), []))
        try:
            return [
                (spec.name, field.alias or name)
                for spec in app.registry
                for name, field in spec.params_model.model_fields.items()
            ]
        finally:
            app.store.close()


FIELDS = _registry_fields()
INITIALIZE_FIELDS = [f.alias or n for n, f in InitializeParams.model_fields.items()]


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


WRONG_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    1.5,
    "",
    "x" * 5000,
    "../../etc/passwd",
    [],
    [None, 1, "a"],
    {},
    {"type": "text", "text": 1},
    _deep(300),  # deeper than orjson will encode (254)
]


def base_params(method: str, thread_id: str) -> dict[str, Any]:
    """Params that would be valid (or close to it) before one field is replaced."""
    if not method.startswith(("thread/", "turn/")) or method in ("thread/start", "thread/list"):
        return {}
    if method == "thread/loaded/list":
        return {}
    params: dict[str, Any] = {"threadId": thread_id}
    if method in ("turn/start", "turn/steer"):
        params["input"] = [{"type": "text", "text": "fuzz"}]
    if method == "turn/steer":
        params["expectedTurnId"] = "not-the-turn"
    if method == "thread/name/set":
        params["name"] = "fuzzed"
    return params


class ParamsFuzzer:
    def __init__(self, session: Session, cwd: Path) -> None:
        self.session = session
        self.ids = itertools.count()
        # The thread's cwd is scratch too; host requests are made harmless (HostGuard).
        result = session.run(session.client.call("thread/start", {"cwd": str(cwd)}))
        self.thread_id = str(result["thread"]["id"])
        session.ledger.forget_seen()

    def send(self, method: str, field: str, value: Any) -> None:
        params = base_params(method, self.thread_id)
        params[field] = value
        params = self.session.ledger.guard.params(method, params)
        rid = f"fuzz-{next(self.ids)}"
        line = json.dumps({"id": rid, "method": method, "params": params}).encode()

        async def go() -> None:
            await self.session.client.send_raw(line)
            await self.session.ledger.check(Counter([reply_key(rid)]))

        self.session.run(go())


@pytest.fixture(scope="module", params=TRANSPORTS)
def fuzzer(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ParamsFuzzer]:
    session = Session(
        str(request.param),
        tmp_path_factory.mktemp("fuzz-params"),
        capabilities={"experimentalApi": True},
    )
    try:
        yield ParamsFuzzer(session, tmp_path_factory.mktemp("fuzz-params-cwd"))
    finally:
        session.close()


def test_registry_has_methods_with_fields() -> None:
    methods = {m for m, _ in FIELDS}
    assert {"thread/start", "turn/start", "model/list", "config/read"} <= methods
    assert len(FIELDS) > 50


@settings(
    max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)
@given(target=st.sampled_from(FIELDS), value=json_values)
def test_any_value_in_any_field(fuzzer: ParamsFuzzer, target: tuple[str, str], value: Any) -> None:
    fuzzer.send(*target, value)


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ParamsFuzzer]:
    session = Session(
        "in_process",
        tmp_path_factory.mktemp("fuzz-sweep"),
        capabilities={"experimentalApi": True},
    )
    try:
        yield ParamsFuzzer(session, tmp_path_factory.mktemp("fuzz-sweep-cwd"))
    finally:
        session.close()


@pytest.mark.parametrize(("method", "field"), FIELDS, ids=[f"{m}.{f}" for m, f in FIELDS])
def test_every_field_of_every_method_with_every_json_type(
    in_process: ParamsFuzzer, method: str, field: str
) -> None:
    for value in WRONG_VALUES:
        in_process.send(method, field, value)


def test_every_initialize_field_with_every_json_type(tmp_path: Path) -> None:
    session = Session("in_process", tmp_path, initialize=False)
    try:
        client = session.client
        for n, (field, value) in enumerate(itertools.product(INITIALIZE_FIELDS, WRONG_VALUES)):
            params = {"clientInfo": {"name": "fuzz", "version": "1"}, field: value}
            line = json.dumps({"id": n, "method": "initialize", "params": params}).encode()
            session.run(client.send_raw(line))
            reply = session.run(client.reply_to(n))
            text = json.dumps(reply)
            assert "Traceback" not in text and 'File "' not in text
            assert "result" in reply or reply["error"]["code"] == -32600, reply
        reply = session.run(client.request("initialize", {}, request_id="last"))
        assert reply["error"]["code"] == -32600
    finally:
        session.close()


def test_params_nested_past_the_limit_are_refused(fuzzer: ParamsFuzzer) -> None:
    """A handler echoing its params could otherwise produce a reply too deep to encode."""
    client = fuzzer.session.client
    for depth, ok in ((100, True), (300, False), (1000, False)):
        rid = f"deep-{depth}"
        value = "[" * depth + "1" + "]" * depth
        method = "mock/experimentalMethod"
        line = f'{{"id": "{rid}", "method": "{method}", "params": {{"value": {value}}}}}'.encode()

        async def go(line: bytes = line, rid: str = rid) -> dict[str, Any]:
            await client.send_raw(line)
            reply = await client.reply_to(rid)
            await fuzzer.session.ledger.check(Counter([reply_key(rid)]))
            return reply

        reply = fuzzer.session.run(go())
        if ok:
            assert "result" in reply
        else:
            assert reply["error"] == {
                "code": -32600,
                "message": "Invalid request: params nested deeper than 128 levels",
            }
