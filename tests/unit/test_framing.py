"""``LineSplitter``: chunking never changes the lines, oversize lines are dropped, memory stays
bounded. Properties are checked with hypothesis against a one-line reference model."""

from __future__ import annotations

import itertools
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appserver.transports.framing import LineSplitter

MAX_LINE = 16


def reference(stream: bytes, max_line: int) -> tuple[list[bytes], int]:
    """Complete lines of at most ``max_line`` bytes, and how many complete lines were longer."""
    complete = stream.split(b"\n")[:-1]
    return [x for x in complete if len(x) <= max_line], sum(len(x) > max_line for x in complete)


# Streams made of short and long lines, with and without a trailing partial line.
_line = st.one_of(
    st.binary(max_size=MAX_LINE).map(lambda b: b.replace(b"\n", b"")),
    st.binary(min_size=MAX_LINE - 1, max_size=MAX_LINE * 4).map(lambda b: b.replace(b"\n", b"x")),
)
streams = st.builds(
    lambda lines, tail: b"\n".join(lines) + tail,
    st.lists(_line, max_size=20),
    st.sampled_from([b"", b"\n", b"partial", b"\n\n"]),
)


def cut(stream: bytes, points: list[int]) -> list[bytes]:
    bounds = sorted({0, len(stream), *(p % (len(stream) + 1) for p in points)})
    return [stream[a:b] for a, b in itertools.pairwise(bounds)]


@settings(deadline=None)  # a loaded CI machine must not turn slowness into a failure
@given(stream=streams, points=st.lists(st.integers(min_value=0), max_size=30))
def test_any_chunking_yields_the_reference_lines(stream: bytes, points: list[int]) -> None:
    splitter = LineSplitter(MAX_LINE)
    lines: list[bytes] = []
    for chunk in cut(stream, points):
        lines.extend(splitter.feed(chunk))
        assert len(splitter._buf) <= MAX_LINE  # never holds more than one allowed line
    expected, dropped = reference(stream, MAX_LINE)
    assert lines == expected
    assert splitter.discarded_lines == dropped


@settings(deadline=None)
@given(stream=streams)
def test_byte_at_a_time_equals_one_chunk(stream: bytes) -> None:
    whole = LineSplitter(MAX_LINE).feed(stream)
    one = LineSplitter(MAX_LINE)
    bytewise = [line for i in range(len(stream)) for line in one.feed(stream[i : i + 1])]
    assert bytewise == whole


def test_line_of_exactly_max_bytes_is_kept() -> None:
    splitter = LineSplitter(4)
    assert splitter.feed(b"abcd\nabcde\nab") == [b"abcd"]
    assert splitter.feed(b"c\n") == [b"abc"]
    assert splitter.discarded_lines == 1


def test_huge_line_streamed_in_chunks_is_dropped_without_buffering() -> None:
    splitter = LineSplitter(1000)
    for _ in range(1000):
        assert splitter.feed(b"x" * 1024) == []
        assert len(splitter._buf) <= 1000
    assert splitter.feed(b"tail\nnext\n") == [b"next"]
    assert splitter.discarded_lines == 1


def test_discard_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    splitter = LineSplitter(3)
    with caplog.at_level(logging.WARNING, logger="appserver.transport"):
        assert splitter.feed(b"toolong\nok\n") == [b"ok"]
    assert "discarded an input line longer than 3 bytes" in caplog.text


def test_empty_lines_pass_through() -> None:
    # Empty lines are framing's business to pass on; decoding drops them with a log line.
    assert LineSplitter(8).feed(b"\n\na\n") == [b"", b"", b"a"]
