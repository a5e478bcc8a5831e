"""Shared machinery for the wire fuzzers: a long-lived client per transport driven from
synchronous hypothesis tests, the reply ledger, the oracle, and the input strategies.

``Session`` owns a private event loop and one ``open_client`` connection for a whole test
module, so hypothesis examples reuse one server. ``Ledger`` checks, after every example, that
each request the oracle found in the input got exactly one reply (a result, -32600 or
-32001), that nothing else got one, that no message carries a traceback, and that a valid
probe request is still answered. ``expected_replies`` is the oracle: which request ids a raw
input must be answered under, decoded exactly as the transports decode.

``HostGuard`` keeps the fuzzed requests off this machine. The host methods act on it with
the server's user's rights (root in CI) on stdio and in-process connections, and hypothesis
draws strings from the project's own constants (``"/tmp"``, ``"fs/remove"``, ``"path"``,
test commands), so ``fs/remove {"path": "/tmp"}`` or a test's shell line as a
``thread/shellCommand`` is a likely input. Every message decoded as a host request has its
paths moved beneath a scratch directory and its commands made inert before it is sent; the
shapes and types fuzzed are unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shlex
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import psutil
from hypothesis import strategies as st

from appserver.protocol.envelope import valid_request_id
from tests.harness import TIMEOUT, StdioWire, WebSocketWire, WireClient, open_client

ALLOWED_ERROR_CODES = {-32600, -32001}
# The host methods (fs/*) report what the OS refused as the reference does: -32603 with the
# OS message, e.g. "No such file or directory (os error 2)". That is an answer, not a bug.
OS_ERROR = re.compile(r"\(os error \d+\)$")
ReplyKey = tuple[str, Any]


def reply_key(rid: Any) -> ReplyKey:
    return (type(rid).__name__, rid)


def is_reply(msg: dict[str, Any]) -> bool:
    return "id" in msg and "method" not in msg and ("result" in msg or "error" in msg)


def _one_message(data: bytes | str) -> list[ReplyKey]:
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError:
        return []
    if not isinstance(obj, dict) or not isinstance(obj.get("method"), str):
        return []
    if "id" not in obj or not valid_request_id(obj["id"]):
        return []
    return [reply_key(obj["id"])]


def expected_replies(transport: str, payload: bytes) -> Counter[ReplyKey]:
    """Request ids the server must answer for ``payload`` sent raw over ``transport``."""
    if transport == "websocket":
        return Counter(_one_message(payload.decode(errors="replace")))
    keys: Counter[ReplyKey] = Counter()
    for line in payload.split(b"\n"):
        keys.update(_one_message(line[:-1] if line.endswith(b"\r") else line))
    return keys


class Session:
    """One initialized client over ``transport`` on its own event loop, for sync tests."""

    def __init__(
        self,
        transport: str,
        home: Path,
        *,
        initialize: bool = True,
        capabilities: dict[str, Any] | None = None,
    ) -> None:
        self.transport = transport
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._cm = open_client(transport, home, initialize=initialize, capabilities=capabilities)
        self.client: WireClient = self.run(self._cm.__aenter__())
        # Beside the home: the fuzzed host requests' playground (see HostGuard).
        self.ledger = Ledger(self.client, HostGuard(home.with_name(home.name + "-host")))
        self.rss_start: int | None = None

    def run(self, coro: Any, timeout: float = TIMEOUT * 4) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def server_pid(self) -> int | None:
        if isinstance(self.client, StdioWire):
            return int(self.client.proc.pid)
        if isinstance(self.client, WebSocketWire):
            port = self.client.ws.remote_address[1]
            for child in psutil.Process().children():
                with contextlib.suppress(psutil.Error):
                    if any(c.laddr.port == port for c in child.net_connections("tcp")):
                        return int(child.pid)
        return None

    def close(self) -> None:
        try:
            self.run(self._cm.__aexit__(None, None, None))
        finally:
            self.loop.close()
            asyncio.set_event_loop(None)

    def rss(self, pid: int | None) -> int | None:
        return None if pid is None else int(psutil.Process(pid).memory_info().rss)


# Methods that read, write or run something on the host, and their fields naming a path
# (camelCase or snake_case: the params models accept both).
HOST_METHODS = frozenset(
    {
        "fs/readFile",
        "fs/writeFile",
        "fs/createDirectory",
        "fs/getMetadata",
        "fs/readDirectory",
        "fs/remove",
        "fs/copy",
        "fs/watch",
        "fuzzyFileSearch",
        "command/exec",
        "thread/shellCommand",
    }
)
PATH_FIELDS = frozenset(
    {"path", "sourcePath", "source_path", "destinationPath", "destination_path", "cwd", "roots"}
)


class HostGuard:
    """Rewrites fuzzed host requests so they can only touch ``scratch`` and run nothing."""

    def __init__(self, scratch: Path) -> None:
        scratch.mkdir(parents=True, exist_ok=True)
        self.scratch = str(scratch.resolve())

    def _path(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("/"):
            # normpath first: no ".." may climb out of the scratch directory.
            return self.scratch + os.path.normpath(value)
        return value

    def params(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` of a ``method`` request, made harmless if it is a host method."""
        if method not in HOST_METHODS:
            return params
        out = dict(params)
        for key, value in params.items():
            if key in PATH_FIELDS:
                out[key] = (
                    [self._path(v) for v in value]
                    if isinstance(value, list)
                    else (self._path(value))
                )
        command = params.get("command")
        if method == "command/exec" and isinstance(command, list) and command:
            out["command"] = ["true", *command]  # `true` ignores its arguments
        if method == "thread/shellCommand" and isinstance(command, str) and command.strip():
            out["command"] = ": " + shlex.quote(command)  # the no-op builtin, quoted words
        return out

    def _message(self, data: bytes) -> bytes:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return data
        if not isinstance(obj, dict):
            return data
        method, params = obj.get("method"), obj.get("params")
        if not isinstance(method, str) or method not in HOST_METHODS:
            return data
        if not isinstance(params, dict):
            return data
        obj["params"] = self.params(method, params)
        return dumps(obj)

    def payload(self, transport: str, payload: bytes) -> bytes:
        """``payload`` with each message the server would decode as a host request rewritten
        (one WebSocket message; lines otherwise)."""
        if transport == "websocket":
            return self._message(payload)
        lines = []
        for line in payload.split(b"\n"):
            cr = line.endswith(b"\r")
            body = self._message(line[:-1] if cr else line)
            lines.append(body + b"\r" if cr else body)
        return b"\n".join(lines)


class Ledger:
    """Every reply the client has received, against every reply the oracle expects."""

    def __init__(self, client: WireClient, guard: HostGuard) -> None:
        self.client = client
        self.guard = guard
        self.expected: Counter[ReplyKey] = Counter()
        self.replies: Counter[ReplyKey] = Counter()
        self._counted = len(client.seen)  # the handshake is not the fuzzer's business
        self._probes = itertools.count()
        self.examples = 0
        self.requests = 0  # well-formed requests found in the inputs
        self.messages = 0

    def forget_seen(self) -> None:
        """Messages received so far (setup the test did itself) are not the ledger's."""
        self._counted = len(self.client.seen)

    def _count_new(self) -> None:
        seen = self.client.seen
        for msg in seen[self._counted :]:
            self.messages += 1
            text = json.dumps(msg)
            assert "Traceback" not in text and 'File "' not in text, text[:500]
            if is_reply(msg):
                self.replies[reply_key(msg["id"])] += 1
                if "error" in msg:
                    logs = "".join(getattr(self.client, "stderr_lines", [])[-40:])
                    error = msg["error"]
                    os_error = error["code"] == -32603 and OS_ERROR.search(error["message"])
                    assert error["code"] in ALLOWED_ERROR_CODES or os_error, f"{msg}\n{logs}"
        self._counted = len(seen)

    async def check(self, sent: Counter[ReplyKey]) -> None:
        """After input whose requests are ``sent``: probe, then settle the books."""
        self.examples += 1
        self.requests += sum(sent.values())
        self.expected.update(sent)
        probe = f"probe-{next(self._probes)}"
        self.expected[reply_key(probe)] += 1
        reply = await self.client.request("account/read", {}, request_id=probe)
        assert "result" in reply, reply
        while True:
            self._count_new()
            missing = {k for k, n in self.expected.items() if self.replies[k] < n}
            extra = {k: n for k, n in self.replies.items() if n > self.expected[k]}
            assert not extra, f"replies nobody asked for: {extra}"
            if not missing:
                break
            await self.client.wait_for(
                lambda m, want=missing: is_reply(m) and reply_key(m["id"]) in want, TIMEOUT
            )
        # The waits above buffer what they skip; the ledger already counted it.
        self.client.buffer.clear()

    async def send(self, payload: bytes) -> None:
        payload = self.guard.payload(self._transport(), payload)
        await self.client.send_raw(payload)
        await self.check(expected_replies(self._transport(), payload))

    def _transport(self) -> str:
        return "websocket" if isinstance(self.client, WebSocketWire) else "lines"


# -- strategies ---------------------------------------------------------------------------------

METHOD_NAMES = [
    "initialize",
    "account/read",
    "model/list",
    "config/read",
    "thread/start",
    "thread/read",
    "thread/list",
    "thread/resume",
    "turn/start",
    "turn/interrupt",
    "mock/experimentalMethod",
]

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)

# Ids of every JSON type, including the edges of the 64-bit range and past it.
ids = st.one_of(
    json_values,
    st.sampled_from([2**63 - 1, -(2**63), 2**63, -(2**63) - 1, 2**64, 0, -1, "", "0", 1.0]),
)


def dumps(value: Any) -> bytes:
    """Serialise with the standard library (it handles integers beyond 64 bits)."""
    return json.dumps(value, ensure_ascii=False).encode()


@st.composite
def envelope_objects(draw: st.DrawFn) -> dict[str, Any]:
    """Request/notification/response-shaped objects with any member missing or mistyped."""
    obj: dict[str, Any] = {}
    if draw(st.booleans()):
        obj["id"] = draw(ids)
    if draw(st.integers(0, 4)):
        obj["method"] = draw(st.one_of(st.sampled_from(METHOD_NAMES), json_values))
    if draw(st.booleans()):
        obj["params"] = draw(json_values)
    if draw(st.integers(0, 5)) == 0:
        obj[draw(st.sampled_from(["result", "error", "jsonrpc"]))] = draw(json_values)
    return obj


envelopes = envelope_objects().map(dumps)

# Several messages in one write. Their ids differ: a client reusing an id while a request is
# in flight cannot tell the replies apart (nor can the wire recorder).
several = st.lists(
    envelope_objects(), min_size=2, max_size=4, unique_by=lambda o: repr(o.get("id"))
).map(lambda objs: b"\n".join(dumps(o) for o in objs))


valid_ids = st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), st.text(max_size=20))

# Well-formed requests: a valid id, any method name, any params value.
requests = st.builds(
    lambda rid, method, params: dumps({"id": rid, "method": method, "params": params}),
    valid_ids,
    st.one_of(st.sampled_from(METHOD_NAMES), st.text(max_size=30)),
    json_values,
)


def _nest(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


@st.composite
def hostile_lines(draw: st.DrawFn) -> bytes:
    """Deep nesting, huge numbers, duplicate keys, truncation, invalid UTF-8."""
    kind = draw(st.integers(0, 6))
    if kind == 0:  # nesting at and past the decoder's depth limit, bare or inside params
        depth = draw(st.integers(1, 1400))
        body = _nest(depth)
        if draw(st.booleans()):
            return f'{{"id": 7, "method": "account/read", "params": {{"a": {body}}}}}'.encode()
        return body.encode()
    if kind == 1:  # numbers past every range, as ids and in params
        number = draw(st.sampled_from(["1e400", "-1e400", "1" * 400, "18446744073709551616"]))
        where = draw(st.sampled_from(["id", "params"]))
        if where == "id":
            return f'{{"id": {number}, "method": "account/read", "params": {{}}}}'.encode()
        return f'{{"id": 8, "method": "model/list", "params": {{"limit": {number}}}}}'.encode()
    if kind == 2:  # duplicate keys
        first, second = draw(ids), draw(ids)
        return (
            f'{{"id": {dumps(first).decode()}, "method": "account/read", "params": {{}}, '
            f'"id": {dumps(second).decode()}, "method": "model/list"}}'
        ).encode()
    if kind == 3:  # a valid request cut short
        line = dumps({"id": draw(ids), "method": "account/read", "params": {}})
        return line[: draw(st.integers(0, max(0, len(line) - 1)))]
    if kind == 4:  # invalid UTF-8 inside an otherwise valid request
        junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80"]))
        return b'{"id": 9, "method": "account/read", "params": {"x": "' + junk + b'"}}'
    if kind == 5:  # control characters and NUL
        return b'{"id": 10, "method": "account\x00/read", "params": {}}'
    return draw(st.binary(max_size=512))


payloads = st.one_of(
    st.binary(max_size=2048),
    st.text(max_size=256).map(str.encode),
    json_values.map(dumps),
    envelopes,
    requests,
    requests,
    hostile_lines(),
    several,
)
