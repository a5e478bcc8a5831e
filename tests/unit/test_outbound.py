"""``OutboundMessage``: merged deltas keep the exact text and do not touch the message other
queues share; a backlog's message gives back orjson's spare buffer only once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from appserver.core import outbound

IDS = {"threadId": "t", "turnId": "u", "itemId": "i"}


def _delta(text: str) -> outbound.OutboundMessage:
    return outbound.notification("item/agentMessage/delta", {**IDS, "delta": text})


@given(st.lists(st.text(max_size=6), min_size=2, max_size=30))
def test_merges_keep_the_text_and_leave_the_shared_message_alone(pieces: list[str]) -> None:
    first = _delta(pieces[0])
    shared_bytes = first.encoded()
    merged = first
    for piece in pieces[1:]:
        merged = merged.merged_with(_delta(piece))
    assert merged.payload["params"]["delta"] == "".join(pieces)
    assert merged.payload["params"]["itemId"] == "i"
    assert first.encoded() == shared_bytes  # still what every other queue will send


def test_compact_copies_a_message_once() -> None:
    msg = outbound.response(1, {"data": ["x" * 100]})
    original = msg.encoded()
    msg.compact()
    compacted = msg.encoded()
    assert compacted == original
    msg.compact()  # the same broadcast queued on a second backlogged connection
    assert msg.encoded() is compacted


def test_a_merged_delta_can_be_compacted_again_after_it_grows() -> None:
    merged = _delta("a").merged_with(_delta("b"))
    merged.encoded()
    merged.compact()
    merged = merged.merged_with(_delta("c"))
    grown = merged.encoded()
    merged.compact()
    assert merged.encoded() is not grown  # the grown bytes were compacted too
    assert merged.payload["params"]["delta"] == "abc"
    assert b'"delta":"abc"' in merged.encoded()
