"""The wire recorder itself: it accepts what the schema accepts and names what it refuses.

Each test feeds a private ``WireRecorder`` (never the session's ``RECORDER``, whose mismatches
would fail the run) hand-made messages: well-formed ones of each kind, and envelope, params,
result and attribution faults.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.wire_recorder import RECORDER, WireRecorder

pytestmark = pytest.mark.skipif(not RECORDER.on, reason=str(RECORDER.off_reason))

TID, TURN = "thr_1", "turn_1"
AGENT_DELTA = {"threadId": TID, "turnId": TURN, "itemId": "msg_1", "delta": "Hi"}


class Client:
    """A stand-in client (the recorder only needs an identity)."""


def feed(*messages: Any, sent: list[dict[str, Any]] | None = None) -> WireRecorder:
    rec, client = WireRecorder(), Client()
    for msg in sent or []:
        rec.sent(client, msg)
    for msg in messages:
        rec.received(client, msg)
    return rec


def details(rec: WireRecorder) -> list[str]:
    return [f"{m.kind} {m.method}: {m.detail}" for m in rec.mismatches]


def test_well_formed_messages_pass() -> None:
    rec = feed(
        {"method": "item/agentMessage/delta", "params": AGENT_DELTA, "emittedAtMs": 1},
        {
            "id": 0,
            "method": "item/fileChange/requestApproval",
            "params": {"threadId": TID, "turnId": TURN, "itemId": "c", "startedAtMs": 5},
        },
        {"id": "a", "result": {"data": [], "nextCursor": None}},
        {"id": 7, "error": {"code": -32600, "message": "Invalid request: nope"}},
        {"lagged": 3},
        sent=[{"id": "a", "method": "thread/loaded/list", "params": {}}],
    )
    assert details(rec) == []
    assert rec.validated == 4 and rec.skipped == 1
    assert set(rec.methods) == {
        "item/agentMessage/delta",
        "item/fileChange/requestApproval",
        "thread/loaded/list",
    }


@pytest.mark.parametrize(
    ("msg", "expected"),
    [
        ({"jsonrpc": "2.0", "method": "warning", "params": {}}, '"jsonrpc" member'),
        ({"method": "item/agentMessage/delta"}, "params is not an object"),
        ({"method": "item/agentMessage/delta", "params": [1]}, "params is not an object"),
        ({"method": "nope/never", "params": {}}, "notification nope/never: not in the schema"),
        ({"id": 1.5, "error": {"code": 1, "message": "x"}}, "is not a string or integer"),
        ({"id": None, "error": {"code": 1, "message": "x"}}, "is not a string or integer"),
        ({"id": 1, "error": {"code": "1", "message": "x"}}, "integer code"),
        ({"id": 1, "result": {}, "error": {"code": 1, "message": "x"}}, "exactly one"),
        ({"id": 9, "result": {}}, "no request this client sent"),
        (
            {"method": "item/agentMessage/delta", "params": AGENT_DELTA, "extra": 1},
            "extra members",
        ),
        (
            {"method": "item/agentMessage/delta", "params": {**AGENT_DELTA, "delta": 5}},
            "AgentMessageDeltaNotification: delta",
        ),
        (
            {"method": "item/agentMessage/delta", "params": {**AGENT_DELTA, "itemId": None}},
            "itemId",
        ),
        (
            {"id": 3, "method": "item/commandExecution/requestApproval", "params": {}},
            "CommandExecutionRequestApprovalParams",
        ),
        ({"id": 3, "method": "item/unknown/ask", "params": {}}, "server request"),
    ],
)
def test_faults_are_named(msg: dict[str, Any], expected: str) -> None:
    found = details(feed(msg))
    assert len(found) >= 1 and any(expected in d for d in found), found


def test_results_are_checked_against_the_method_of_their_request() -> None:
    sent = [
        {"id": 1, "method": "thread/loaded/list", "params": {}},
        {"id": "1", "method": "thread/archive", "params": {"threadId": TID}},
    ]
    # Same value, other id type: each reply is checked against its own request's method.
    ok = feed({"id": "1", "result": {}}, {"id": 1, "result": {"data": []}}, sent=sent)
    assert details(ok) == []
    bad = feed({"id": 1, "result": {"data": "x"}}, sent=sent)
    assert any("ThreadLoadedListResponse" in d for d in details(bad)), details(bad)


def test_strict_types_no_coercion() -> None:
    sent = [{"id": 1, "method": "thread/loaded/list", "params": {}}]
    rec = feed({"id": 1, "result": {"data": [1, 2]}}, sent=sent)
    assert details(rec), "integers must not pass as thread ids"


def test_initialize_needs_a_version_the_sdk_accepts() -> None:
    sent = [{"id": 1, "method": "initialize", "params": {}}]
    good = {"userAgent": "appserver/0.169.0 (Linux; x86_64)", "platformFamily": "unix"}
    assert details(feed({"id": 1, "result": good}, sent=sent)) == []
    old = {"userAgent": "appserver/0.100.0"}
    assert any("0.151.0" in d for d in details(feed({"id": 1, "result": old}, sent=sent)))
    assert details(feed({"id": 1, "result": {}}, sent=sent))


def test_a_stream_write_may_split_a_request() -> None:
    rec, client = WireRecorder(), Client()
    rec.sent_raw(client, b'{"id": 4, "method": "thread/lo', stream=True)
    rec.sent_raw(client, b'aded/list", "params": {}}\n', stream=True)
    rec.received(client, {"id": 4, "result": {"data": []}})
    assert details(rec) == [] and rec.methods == {"thread/loaded/list": 1}


def test_summary_line() -> None:
    rec = feed({"method": "item/agentMessage/delta", "params": AGENT_DELTA})
    assert rec.summary() == (
        "wire recorder: 1 messages of 1 distinct methods validated, 0 mismatches"
    )
