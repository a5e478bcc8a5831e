"""``classify`` (decoded JSON → one of the four message kinds, or a reason) and
``decode_message`` (bytes → message or a logged drop), as tables."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from appserver.protocol.envelope import (
    MISSING,
    ErrorReply,
    Notification,
    Request,
    Response,
    classify,
)
from appserver.transports.decode import decode_message

I64_MAX = 2**63 - 1

MESSAGES: list[tuple[Any, Any]] = [
    ({"id": 1, "method": "a", "params": {}}, Request(1, "a", {})),
    ({"id": "x", "method": "a"}, Request("x", "a", MISSING)),
    ({"id": 1, "method": "a", "params": None}, Request(1, "a", None)),
    ({"id": I64_MAX, "method": "a"}, Request(I64_MAX, "a", MISSING)),
    ({"id": -(2**63), "method": "a"}, Request(-(2**63), "a", MISSING)),
    ({"jsonrpc": "2.0", "id": 2, "method": "a", "params": []}, Request(2, "a", [])),
    ({"method": "initialized"}, Notification("initialized", MISSING)),
    ({"method": "n", "params": {"k": 1}}, Notification("n", {"k": 1})),
    ({"id": 3, "result": None}, Response(3, None)),
    ({"id": "s", "result": {"ok": True}}, Response("s", {"ok": True})),
    (
        {"id": 4, "error": {"code": -1, "message": "no", "data": [1]}},
        ErrorReply(4, -1, "no", [1]),
    ),
    ({"id": 5, "error": {"code": True, "message": 7}}, ErrorReply(5, 0, "", None)),
]

REJECTED: list[tuple[Any, str]] = [
    ([1, 2, 3], "not a JSON object (list)"),
    (42, "not a JSON object (int)"),
    ("hello", "not a JSON object (str)"),
    (None, "not a JSON object (NoneType)"),
    ({"id": 1, "method": 5}, "method is not a string"),
    ({"id": None, "method": "a"}, "invalid request id None"),
    ({"id": 1.5, "method": "a"}, "invalid request id 1.5"),
    ({"id": True, "method": "a"}, "invalid request id True"),
    ({"id": 2**63, "method": "a"}, f"invalid request id {2**63}"),
    ({"id": [1], "result": 1}, "invalid response id [1]"),
    ({"id": 1}, "object is not a request, notification or response"),
    ({"id": 1, "error": "bad"}, "object is not a request, notification or response"),
    ({"params": {}}, "object is not a request, notification or response"),
    ({}, "object is not a request, notification or response"),
]


@pytest.mark.parametrize(("obj", "expected"), MESSAGES)
def test_classify_messages(obj: Any, expected: Any) -> None:
    assert classify(obj) == expected


@pytest.mark.parametrize(("obj", "reason"), REJECTED)
def test_classify_rejects_with_a_reason(obj: Any, reason: str) -> None:
    assert classify(obj) == reason


@pytest.mark.parametrize(
    "data",
    [b"", b"   ", b"{", b"\xff\xfe", b'{"id":1,"method":"a"}\n{"id":2,"method":"a"}', b"[1]"],
)
def test_decode_drops_undecodable_input_with_a_log_line(
    data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="appserver.transport"):
        assert decode_message(data, 7) is None
    assert "connection 7" in caplog.text


@pytest.mark.parametrize(
    "data", [b'{"id":1,"method":"a"}\r', '{"id":1,"method":"a"}', b'{"id":1,"method":"a"}']
)
def test_decode_accepts_bytes_str_and_a_trailing_cr(data: bytes | str) -> None:
    assert decode_message(data, 1) == Request(1, "a", MISSING)
