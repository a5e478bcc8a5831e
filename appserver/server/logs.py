"""Logging setup: everything goes to stderr, as text or one JSON object per line.

Owns the handler and formatter choice, and the redaction every line goes through: URL
credentials (``http://user:pass@host``, ``?key=...``) and the known credential values
(``store.redaction``) are masked in the message and in any traceback, whichever logger emitted
it. The HTTP client's loggers (``httpx``/``httpcore``, and their ``httpx2``/``httpcore2``
forks the openai SDK may use), ``openai`` and ``websockets`` are quieted to warning unless the
level is debug. It must never attach a handler to stdout: on stdio, stdout is the protocol
channel.
"""

from __future__ import annotations

import logging
import sys

import orjson

from appserver.store.redaction import redact_text

# Loggers whose info lines are noise (and name request URLs): warning and above only.
QUIET_LOGGERS = ("websockets", "httpx", "httpcore", "httpx2", "httpcore2", "openai")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact_text(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = redact_text(self.formatException(record.exc_info))
        return orjson.dumps(entry).decode()


class RedactingFormatter(logging.Formatter):
    """The text format, with credentials masked in the whole formatted line."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Library chatter (HTTP client, websockets handshakes) is noise at info level; at debug
    # it is what one is after (and goes through the same redaction).
    quiet = root.level if root.level <= logging.DEBUG else max(logging.WARNING, root.level)
    for noisy in QUIET_LOGGERS:
        logging.getLogger(noisy).setLevel(quiet)
