"""Terminal input and output for ``appserver chat``.

Owns ``LineReader`` (stdin lines for an event loop, from a pipe, a file or a terminal alike)
and ``Console`` (where each kind of output goes, ANSI styling only on terminals and without
``NO_COLOR``, line-start tracking so notes never land mid-line, the ``--json`` wire log).
Every text it writes passes through ``safe_text.for_terminal`` first, so no control
character, escape sequence or bidi override from the other side reaches the terminal raw;
its own styling codes are added after that. The wire log is JSON, which escapes C0 controls;
the controls JSON may leave raw (DEL, C1, bidi, line separators) are written as ``\\uXXXX``
escapes too. This module must never know the protocol: it writes text and dicts it is handed.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import re
import sys
import threading
from typing import Any, TextIO

import orjson

from appserver.client.safe_text import for_terminal

DIM = "\x1b[2m"
BOLD = "\x1b[1m"
RED = "\x1b[31m"
YELLOW = "\x1b[33m"
RESET = "\x1b[0m"

# Characters JSON allows raw inside strings that a terminal may still act on.
_JSON_RAW_CONTROLS = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


class LineReader:
    """Lines of a file descriptor, read by a daemon thread and handed to the event loop.

    The thread starts at the first ``readline`` and reads ahead (lines typed or piped while a
    turn runs wait in order). It uses ``os.read`` on the descriptor, never ``sys.stdin``'s
    buffered object, so a thread still blocked in it cannot hold a lock at interpreter exit
    and any selectable or regular file works the same.
    """

    def __init__(self, fd: int = 0) -> None:
        self.fd = fd
        self._lines: asyncio.Queue[str | None] | None = None
        self._eof = False

    def _start(self) -> asyncio.Queue[str | None]:
        if self._lines is None:
            self._lines = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(
                target=self._run, args=(loop, self._lines), name="chat-stdin", daemon=True
            ).start()
        return self._lines

    def _run(self, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = ""
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except InterruptedError:
                continue
            except OSError:  # EIO once a pseudo-terminal's other side has gone
                chunk = b""
            pending += decoder.decode(chunk, final=not chunk)
            *complete, pending = pending.split("\n")
            for line in complete:
                loop.call_soon_threadsafe(lines.put_nowait, line.removesuffix("\r"))
            if not chunk:
                if pending:
                    loop.call_soon_threadsafe(lines.put_nowait, pending.removesuffix("\r"))
                loop.call_soon_threadsafe(lines.put_nowait, None)
                return

    async def readline(self) -> str | None:
        """The next line without its newline, or ``None`` at end of input."""
        if self._eof:
            return None
        line = await self._start().get()
        if line is None:
            self._eof = True
        return line


class Console:
    """Where output goes. ``text`` is the agent's words (stdout, or stderr under ``--json``);
    everything else — notes, reasoning, commands, prompts, errors — goes to stderr."""

    def __init__(self, *, json_mode: bool = False) -> None:
        self.json_mode = json_mode
        self.out: TextIO = sys.stderr if json_mode else sys.stdout
        self.err: TextIO = sys.stderr
        color_ok = "NO_COLOR" not in os.environ
        self._styled = {id(s): color_ok and is_tty(s) for s in (self.out, self.err)}
        self._at_line_start = {id(self.out): True, id(self.err): True}

    def style(self, stream: TextIO, text: str, *codes: str) -> str:
        if not codes or not self._styled.get(id(stream)):
            return text
        return "".join(codes) + text + RESET

    def write(self, stream: TextIO, text: str, *codes: str) -> None:
        """Write ``text`` made terminal-safe (``safe_text.for_terminal``), then styled."""
        text = for_terminal(text)
        if not text:
            return
        stream.write(self.style(stream, text, *codes))
        stream.flush()
        self._at_line_start[id(stream)] = text.endswith("\n")

    def mark_line_start(self, stream: TextIO) -> None:
        """The cursor is at a line start already (a terminal echoed the user's Enter)."""
        self._at_line_start[id(stream)] = True

    def end_line(self, stream: TextIO) -> None:
        if not self._at_line_start.get(id(stream), True):
            self.write(stream, "\n")

    def fresh_line(self) -> None:
        """End any partial line on both streams (they often share one terminal)."""
        for s in {id(self.out): self.out, id(self.err): self.err}.values():
            self.end_line(s)

    def line(self, stream: TextIO, text: str, *codes: str) -> None:
        """A whole line, started on a fresh line of both streams."""
        self.fresh_line()
        self.write(stream, text.rstrip("\n"), *codes)
        self.write(stream, "\n")

    # -- conveniences -----------------------------------------------------------------------
    def text(self, delta: str) -> None:
        self.write(self.out, delta)

    def note(self, text: str) -> None:
        self.line(self.err, text, DIM)

    def warn(self, text: str) -> None:
        self.line(self.err, f"warning: {text}", YELLOW)

    def error(self, text: str) -> None:
        self.line(self.err, f"error: {text}", RED)

    def wire(self, direction: str, msg: dict[str, Any]) -> None:
        """One ``--json`` line: ``{"dir": "c2s" | "s2c", "msg": <the message>}`` on stdout."""
        line = orjson.dumps({"dir": direction, "msg": msg}).decode()
        sys.stdout.write(_JSON_RAW_CONTROLS.sub(_json_escape, line) + "\n")
        sys.stdout.flush()
