"""Line framing with a hard cap: JSONL bytes in, complete lines out.

Owns ``LineSplitter``: feed it chunks, get back complete lines. A line longer than the cap is
discarded as it streams past (never buffered whole) and reading resyncs at the next newline.
It must never decode JSON or allocate more than ``max_line`` bytes for one line.
"""

from __future__ import annotations

import logging

log = logging.getLogger("appserver.transport")


class LineSplitter:
    def __init__(self, max_line: int) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False
        self.discarded_lines = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while True:
            nl = chunk.find(b"\n", start)
            if nl < 0:
                break
            if self._discarding:
                self._discarding = False
                self._note_discard()
            elif len(self._buf) + (nl - start) > self.max_line:
                self._buf.clear()
                self._note_discard()
            elif self._buf:
                self._buf += chunk[start:nl]
                lines.append(bytes(self._buf))
                self._buf.clear()
            else:
                lines.append(chunk[start:nl])
            start = nl + 1
        rest = len(chunk) - start
        if rest and not self._discarding:
            if len(self._buf) + rest > self.max_line:
                self._buf.clear()
                self._discarding = True
            else:
                self._buf += chunk[start:]
        return lines

    def _note_discard(self) -> None:
        self.discarded_lines += 1
        log.warning("discarded an input line longer than %d bytes", self.max_line)
