"""Rollout files: the append-only JSONL record of one thread.

Owns the on-disk line format (``{"timestamp", "type", "payload"}``), writing lines so that a
crash leaves at most one torn line, and reading files back tolerantly. A line that cannot be
written (disk full) is kept, in order, and written before the next one or by ``retry`` (up to
``MAX_PENDING_BYTES``); a line torn by a failed write is ended with a newline before anything
else is appended, so it never swallows the next line.

Files are created 0600 in 0700 directories (``private.py``), and every line is written with
the known credential values blanked (``redaction.KNOWN``). Must never: rewrite or truncate an
existing rollout, interpret payloads (that is ``history.py``'s job), or raise on bad file
content when reading.
"""

from __future__ import annotations

import errno
import logging
import os
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson

from appserver.store import private, redaction

logger = logging.getLogger("appserver.store")

_NEWLINE = b"\n"
# Lines kept in memory while they cannot be written; past this, newer lines are dropped.
MAX_PENDING_BYTES = 32 * 1024 * 1024


def rfc3339_now() -> str:
    """Current UTC time as RFC3339 with milliseconds and a ``Z`` suffix."""
    return format_rfc3339(datetime.now(UTC))


def format_rfc3339(moment: datetime) -> str:
    """Format an aware (or naive-UTC) datetime like ``2026-11-25T02:25:06.529Z``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def encode_line(type_: str, payload: dict[str, Any], timestamp: str | None = None) -> bytes:
    """Encode one rollout line, trailing newline included."""
    record = {"timestamp": timestamp or rfc3339_now(), "type": type_, "payload": payload}
    return orjson.dumps(record) + _NEWLINE


class RolloutWriter:
    """Appends lines to one rollout file.

    The file (and its parent directories) is created on the first ``append`` only, so a
    thread that never receives input leaves nothing on disk.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._closed = False
        self._pending: deque[bytes] = deque()  # lines not (wholly) on disk yet, in order
        self._pending_bytes = 0
        self._torn = False  # the file ends inside a line a failed write left behind
        self.dropped = 0  # lines lost past MAX_PENDING_BYTES

    @property
    def materialized(self) -> bool:
        """True once the file exists because this writer (or an earlier one) wrote to it, or
        holds lines waiting to be written."""
        return self._fd is not None or bool(self._pending) or self.path.exists()

    @property
    def pending(self) -> int:
        """How many lines wait to be written (the disk was full)."""
        return len(self._pending)

    def pending_lines(self) -> list[dict[str, Any]]:
        """The lines waiting to be written, decoded (readers add them to what is on disk)."""
        return [line for raw in self._pending if (line := decode_line(raw)) is not None]

    def retry(self) -> bool:
        """Try to write the waiting lines; True when none is left waiting."""
        if self._closed or not self._pending:
            return not self._pending
        try:
            self._write_pending()
        except OSError as exc:
            logger.debug("rollout %s still cannot be written: %s", self.path, exc)
        return not self._pending

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, type: str, payload: dict[str, Any], *, durable: bool = False) -> None:
        """Append one line; with ``durable`` the data is fsynced before returning."""
        if self._closed:
            raise ValueError(f"rollout writer for {self.path} is closed")
        # Known credential values (a stored API key a command printed, say) never reach disk.
        line = redaction.KNOWN.scrub_bytes(encode_line(type, payload))
        if self._pending_bytes + len(line) > MAX_PENDING_BYTES:
            self.dropped += 1
            raise OSError(errno.ENOSPC, f"{self.dropped} rollout line(s) dropped", str(self.path))
        self._pending.append(line)
        self._pending_bytes += len(line)
        # Raises OSError while the disk is full: the line then waits (see ``retry``).
        self._write_pending()
        if durable and self._fd is not None:
            os.fsync(self._fd)

    def _write_pending(self) -> None:
        fd = self._ensure_open()
        while self._pending:
            if self._torn:
                _write_all(fd, _NEWLINE)
                self._torn = False
            line = self._pending[0]
            written = 0
            try:
                while written < len(line):
                    written += os.write(fd, memoryview(line)[written:])
            except OSError:
                self._torn = written > 0
                raise
            self._pending.popleft()
            self._pending_bytes -= len(line)

    def flush(self) -> None:
        """Force written lines to stable storage (writes are unbuffered already)."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._pending and not self.retry():
            logger.error(
                "rollout %s: %d line(s) could not be written and are lost",
                self.path,
                len(self._pending),
            )
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._closed = True

    def __enter__(self) -> RolloutWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _ensure_open(self) -> int:
        if self._fd is None:
            private.ensure_dir(self.path.parent)
            # O_APPEND: every write lands at the current end even if the file moved
            # (archive) or someone else appended; raw fd: no userspace buffer to lose.
            # Read access is only for peeking at the last byte (_terminate_torn_tail).
            # Mode 0600 whatever the umask: a rollout holds everything said and run.
            fd = private.open_file(self.path, os.O_RDWR | os.O_APPEND)
            try:
                _terminate_torn_tail(fd)
            except OSError:
                os.close(fd)
                raise
            self._fd = fd
        return self._fd


def _terminate_torn_tail(fd: int) -> None:
    """If a previous process died mid-line, end that fragment with a newline.

    Otherwise our first line would be glued onto the fragment and be lost with it.
    """
    size = os.fstat(fd).st_size
    if size == 0:
        return
    if os.pread(fd, 1, size - 1) != _NEWLINE:
        _write_all(fd, _NEWLINE)


def _write_all(fd: int, data: bytes) -> None:
    # A regular-file write is normally complete in one call; the loop only guards
    # against a short write (e.g. disk full mid-way) silently dropping bytes.
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


@dataclass
class RolloutContents:
    """Parsed lines of a rollout plus whether a torn last line was dropped."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    torn_tail: bool = False


def read_rollout(path: Path) -> RolloutContents:
    """Read every decodable line of ``path``.

    Undecodable lines are skipped with a warning. A last line without its newline is
    accepted only if it decodes to a complete object (the writer emits each line in one
    write, so a valid object without newline is a complete line of a hand-edited file).
    Raises FileNotFoundError only; never raises on content.
    """
    data = path.read_bytes()
    return parse_rollout_bytes(data, source=str(path))


def parse_rollout_bytes(data: bytes, *, source: str = "<bytes>") -> RolloutContents:
    """Parse rollout content; see ``read_rollout``."""
    contents = RolloutContents()
    numbered = [(n, raw) for n, raw in enumerate(data.split(_NEWLINE), start=1) if raw.strip()]
    for position, (number, raw) in enumerate(numbered):
        parsed = decode_line(raw)
        if parsed is not None:
            contents.lines.append(parsed)
        elif position == len(numbered) - 1:
            # The usual shape of a crash mid-write: only the last line can be torn.
            contents.torn_tail = True
            logger.warning("skipping torn last line %d in rollout %s", number, source)
        else:
            logger.warning("skipping undecodable line %d in rollout %s", number, source)
    return contents


def decode_line(raw: bytes) -> dict[str, Any] | None:
    """One line decoded to an object, or None if it is not valid JSON object text."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
