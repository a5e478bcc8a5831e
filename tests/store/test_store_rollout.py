"""RolloutWriter / read_rollout: line format, lazy creation, torn-line tolerance."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from appserver.store.rollout import RolloutWriter, encode_line, parse_rollout_bytes, read_rollout

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _write_three(path: Path) -> None:
    with RolloutWriter(path) as writer:
        writer.append("session_meta", {"id": "t1", "cwd": "/x"})
        writer.append("event_msg", {"type": "user_message", "message": "hi ☃"})
        writer.append("response_item", {"type": "message", "role": "user"}, durable=True)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    _write_three(path)
    contents = read_rollout(path)
    assert not contents.torn_tail
    assert [line["type"] for line in contents.lines] == [
        "session_meta",
        "event_msg",
        "response_item",
    ]
    assert contents.lines[1]["payload"] == {"type": "user_message", "message": "hi ☃"}
    assert all(TIMESTAMP.match(line["timestamp"]) for line in contents.lines)
    assert all(list(line) == ["timestamp", "type", "payload"] for line in contents.lines)
    assert path.read_bytes().endswith(b"\n")


def test_file_and_parents_created_lazily(tmp_path: Path) -> None:
    path = tmp_path / "sessions" / "2026" / "01" / "02" / "r.jsonl"
    writer = RolloutWriter(path)
    assert not writer.materialized
    assert not path.parent.exists()
    writer.append("session_meta", {"id": "t"})
    assert writer.materialized
    assert path.is_file()
    writer.flush()
    writer.close()
    assert writer.closed


def test_append_after_close_is_an_error(tmp_path: Path) -> None:
    writer = RolloutWriter(tmp_path / "r.jsonl")
    writer.close()
    with pytest.raises(ValueError):
        writer.append("event_msg", {})


def test_each_line_is_one_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[bytes] = []
    real_write = os.write

    def counting_write(fd: int, data: Any) -> int:
        if b"event_msg" in bytes(data):  # ignore writes by anything but the writer
            writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", counting_write)
    with RolloutWriter(tmp_path / "r.jsonl") as writer:
        writer.append("event_msg", {"type": "a", "text": "x" * 100_000})
        writer.append("event_msg", {"type": "b"})
    assert len(writes) == 2
    assert all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)


def test_torn_last_line_is_skipped_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    _write_three(path)
    whole = path.read_bytes()
    path.write_bytes(whole[:-15])  # cut into the last line, newline included
    with caplog.at_level(logging.WARNING, logger="appserver.store"):
        contents = read_rollout(path)
    assert contents.torn_tail
    assert [line["type"] for line in contents.lines] == ["session_meta", "event_msg"]
    assert any(str(path) in r.getMessage() and r.name == "appserver.store" for r in caplog.records)


def test_undecodable_last_line_with_newline_counts_as_torn(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    _write_three(path)
    with path.open("ab") as f:
        f.write(b'{"timestamp": "x", "ty\n')
    contents = read_rollout(path)
    assert contents.torn_tail
    assert len(contents.lines) == 3


def test_invalid_middle_line_is_skipped_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "r.jsonl"
    good = encode_line("event_msg", {"type": "a"})
    path.write_bytes(good + b"not json\n" + b"[1, 2]\n" + b"\n" + good)
    with caplog.at_level(logging.WARNING, logger="appserver.store"):
        contents = read_rollout(path)
    assert not contents.torn_tail
    assert len(contents.lines) == 2
    assert sum(str(path) in r.getMessage() for r in caplog.records) == 2


def test_complete_last_line_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_bytes(encode_line("event_msg", {"type": "a"}).rstrip(b"\n"))
    contents = read_rollout(path)
    assert not contents.torn_tail
    assert len(contents.lines) == 1


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_rollout(tmp_path / "absent.jsonl")


def test_writer_after_crash_does_not_glue_onto_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    _write_three(path)
    path.write_bytes(path.read_bytes()[:-10])  # the crashed writer's torn tail
    with RolloutWriter(path) as writer:
        writer.append("event_msg", {"type": "after_restart"})
    contents = read_rollout(path)
    assert not contents.torn_tail
    assert [line["payload"].get("type") for line in contents.lines] == [
        None,
        "user_message",
        "after_restart",
    ]


_payloads = st.lists(
    st.dictionaries(
        st.text(max_size=5),
        st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.text(max_size=20), st.booleans()),
        max_size=4,
    ),
    min_size=1,
    max_size=6,
)


@given(payloads=_payloads, cut=st.floats(min_value=0.0, max_value=1.0))
def test_any_truncation_yields_a_prefix(payloads: list[dict[str, Any]], cut: float) -> None:
    lines = [encode_line("event_msg", p, timestamp="2026-01-01T00:00:00.000Z") for p in payloads]
    data = b"".join(lines)
    truncated = data[: int(len(data) * cut)]
    contents = parse_rollout_bytes(truncated)
    expected = [orjson.loads(line) for line in lines]
    assert contents.lines == expected[: len(contents.lines)]
    # Everything that was fully written (newline included) must come back.
    assert len(contents.lines) >= truncated.count(b"\n")


@given(data=st.binary(max_size=200))
def test_garbage_never_raises(data: bytes) -> None:
    contents = parse_rollout_bytes(data)
    assert all(isinstance(line, dict) for line in contents.lines)
