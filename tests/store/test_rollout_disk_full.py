"""RolloutWriter on a full disk, with a fault-injecting ``os.write`` (no root needed).

Covers: a line that cannot be written is kept and raises ``OSError``; later lines queue behind
it in order; ``pending_lines`` shows them to readers; ``retry`` writes them once space returns;
a write torn mid-line is ended with a newline before anything else, so the torn fragment is
one skipped line and never swallows the next; ``MAX_PENDING_BYTES`` bounds what is kept.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from appserver.store import rollout
from appserver.store.rollout import RolloutWriter, read_rollout


class Disk:
    """``os.write`` with a byte budget: past it, a short write and then ENOSPC."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.free: int | None = None  # None: unlimited
        self._real = os.write
        monkeypatch.setattr(rollout.os, "write", self.write)

    def write(self, fd: int, data: bytes | memoryview) -> int:
        if self.free is None:
            return self._real(fd, data)
        if self.free == 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        n = self._real(fd, bytes(data[: self.free]))
        self.free -= n
        return n


def test_failed_lines_wait_in_order_and_are_written_when_space_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(monkeypatch)
    path = tmp_path / "r.jsonl"
    writer = RolloutWriter(path)
    writer.append("event_msg", {"n": 1})
    disk.free = 10  # the next line is torn after 10 bytes
    with pytest.raises(OSError):
        writer.append("event_msg", {"n": 2})
    with pytest.raises(OSError):
        writer.append("event_msg", {"n": 3})
    assert writer.pending == 2
    assert [line["payload"]["n"] for line in writer.pending_lines()] == [2, 3]
    assert not writer.retry()
    disk.free = None
    assert writer.retry()
    writer.append("event_msg", {"n": 4})
    writer.close()
    raw = path.read_bytes().split(b"\n")
    assert len(raw[1]) == 10  # the torn fragment, alone on its line
    contents = read_rollout(path)
    assert [line["payload"]["n"] for line in contents.lines] == [1, 2, 3, 4]
    assert not contents.torn_tail


def test_a_torn_write_never_swallows_the_next_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = Disk(monkeypatch)
    path = tmp_path / "r.jsonl"
    writer = RolloutWriter(path)
    disk.free = 5
    with pytest.raises(OSError):
        writer.append("event_msg", {"n": 1})
    writer.close()  # the process goes away with the line still unwritten (logged as lost)
    disk.free = None
    again = RolloutWriter(path)
    again.append("event_msg", {"n": 2})
    again.close()
    assert [line["payload"]["n"] for line in read_rollout(path).lines] == [2]


def test_a_failed_open_keeps_the_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "sub" / "r.jsonl"
    real_open = os.open
    full = {"on": True}

    def failing_open(*args: object, **kwargs: object) -> int:
        if full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rollout.os, "open", failing_open)
    writer = RolloutWriter(path)
    with pytest.raises(OSError):
        writer.append("session_meta", {"id": "t"})
    assert writer.materialized and writer.pending == 1
    full["on"] = False
    assert writer.retry()
    writer.close()
    assert [line["type"] for line in read_rollout(path).lines] == ["session_meta"]


def test_what_is_kept_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = Disk(monkeypatch)
    monkeypatch.setattr(rollout, "MAX_PENDING_BYTES", 200)
    writer = RolloutWriter(tmp_path / "r.jsonl")
    disk.free = 0
    for n in range(10):
        with pytest.raises(OSError):
            writer.append("event_msg", {"n": n, "pad": "x" * 40})
    assert 0 < writer.pending < 10
    assert writer.dropped == 10 - writer.pending
