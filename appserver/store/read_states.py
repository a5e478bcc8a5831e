"""Per-thread read states (``ThreadReadState``): where a stored thread's unread part starts.

Owns ``ReadStates``, a small JSON file (``read_states.json`` in the home) mapping a thread id
to ``{firstUnread, revision}``: ``firstUnread`` is null when everything was read,
``{type: "turn", turnId}`` for the earliest finished turn nobody has read yet, or
``{type: "threadStart"}`` when a client marked the thread unread. Every change gets a new
opaque ``revision`` (a UUID), which ``thread/readState/update`` may name to refuse an edit
made against a state the caller has not seen. The file is rewritten whole (write to a
temporary file, then rename), so a crash leaves the old or the new map, never half of one; a
missing or unreadable file starts empty. It must never hold rollout data, and never raise on
a malformed file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any

import orjson

from appserver.store import private

log = logging.getLogger("appserver.store")

FILE_NAME = "read_states.json"


class RevisionMismatch(Exception):
    """An update named a revision that is no longer current."""


class ReadStates:
    def __init__(self, home: Path) -> None:
        self.path = home / FILE_NAME
        self._states: dict[str, dict[str, Any]] = self._load()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError):
            log.warning("ignoring unreadable %s", self.path)
            return {}
        if not isinstance(data, dict):
            return {}
        return {
            k: v
            for k, v in data.items()
            if isinstance(k, str) and isinstance(v, dict) and isinstance(v.get("revision"), str)
        }

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            # 0600 whatever the umask, like every file under the home (store/private.py).
            fd = private.open_file(tmp, os.O_WRONLY | os.O_TRUNC)
            try:
                data = memoryview(orjson.dumps(self._states))
                while data:
                    data = data[os.write(fd, data) :]
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except OSError as exc:
            # A full disk is an expected condition: one line, no traceback (the state is kept
            # in memory and written again with the next change).
            log.warning("could not write %s: %s", self.path, exc)
            with contextlib.suppress(OSError):
                tmp.unlink()

    def get(self, thread_id: str) -> dict[str, Any] | None:
        state = self._states.get(thread_id)
        return dict(state) if state is not None else None

    def _set(self, thread_id: str, first_unread: dict[str, Any] | None) -> dict[str, Any]:
        state = {"firstUnread": first_unread, "revision": str(uuid.uuid4())}
        self._states[thread_id] = state
        self._save()
        return dict(state)

    def turn_finished(self, thread_id: str, turn_id: str) -> dict[str, Any]:
        """A finished turn is unread; an earlier unread position stays the first one."""
        current = self._states.get(thread_id)
        first = current.get("firstUnread") if current else None
        return self._set(thread_id, first or {"type": "turn", "turnId": turn_id})

    def update(
        self,
        thread_id: str,
        operation: str,
        expected_revision: str | None,
        last_turn_id: str | None,
    ) -> dict[str, Any]:
        """Mark read (``firstUnread`` null) or unread (from the last turn, else from the
        thread's start). Raises ``RevisionMismatch`` for a stale ``expected_revision``."""
        current = self._states.get(thread_id)
        if expected_revision is not None and (
            current is None or current["revision"] != expected_revision
        ):
            raise RevisionMismatch(thread_id)
        if operation == "read":
            return self._set(thread_id, None)
        if last_turn_id is not None:
            return self._set(thread_id, {"type": "turn", "turnId": last_turn_id})
        return self._set(thread_id, {"type": "threadStart"})

    def forget(self, thread_id: str) -> None:
        if self._states.pop(thread_id, None) is not None:
            self._save()
