"""The stored login: ``$APPSERVER_HOME/auth.json``, holding an API key from ``account/login/start``.

Owns ``AuthStore``: reading the key (re-read when the file changes on disk, so a login made by
another server on the same home is seen), writing it atomically with mode 0600 (a temporary
file in the same directory, fsync, rename), and deleting it on logout. The file name and the
``OPENAI_API_KEY`` field are Codex's, so a Codex ``auth.json`` holding an API key works here
too; other Codex auth modes (ChatGPT tokens) are not read.

It must never log, repr or return the key anywhere but to ``api_key()``'s caller (the model
client building its ``Authorization`` header and ``account/read`` asking whether one exists),
and never put it in the environment. This module imports nothing heavy: no pydantic, no engine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from pathlib import Path

import orjson

from appserver.store import private, redaction

AUTH_FILE = "auth.json"
KEY_FIELD = "OPENAI_API_KEY"
FILE_MODE = 0o600

log = logging.getLogger("appserver.auth")

# What identifies one version of the file on disk: (device, inode, size, mtime in ns).
_Stamp = tuple[int, int, int, int]


class AuthStore:
    def __init__(self, home: Path) -> None:
        self.path = home / AUTH_FILE
        self._stamp: _Stamp | None = None
        self._key: str | None = None

    def __repr__(self) -> str:
        return f"AuthStore(path={str(self.path)!r})"

    __str__ = __repr__

    def api_key(self) -> str | None:
        """The stored API key, or None when there is no auth.json or it holds no key."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._stamp, self._key = None, None
            return None
        except OSError as exc:
            log.warning("cannot read %s: %s", self.path, exc.strerror)
            return None
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if stamp != self._stamp:
            self._key = self._read()
            self._stamp = stamp
        return self._key

    def _read(self) -> str | None:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, orjson.JSONDecodeError):
            # The error text could quote the file's content: say only that it is unusable.
            log.warning("ignoring %s: not readable JSON", self.path)
            return None
        value = data.get(KEY_FIELD) if isinstance(data, dict) else None
        if not isinstance(value, str) or not value.strip():
            return None
        redaction.KNOWN.register(value)  # never written to a rollout or a log line
        return value.strip()

    def save_api_key(self, key: str) -> None:
        """Replace auth.json with one holding ``key`` (mode 0600, atomic). Blocking I/O."""
        redaction.KNOWN.register(key)
        payload = orjson.dumps(
            {"auth_mode": "apikey", KEY_FIELD: key, "tokens": None, "last_refresh": None},
            option=orjson.OPT_INDENT_2,
        )
        directory = self.path.parent
        private.ensure_dir(directory)
        tmp = directory / f".{AUTH_FILE}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(tmp, flags, FILE_MODE)
        try:
            try:
                os.fchmod(fd, FILE_MODE)  # whatever the umask
                view = memoryview(payload)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _fsync_dir(directory)
        self._stamp, self._key = None, None
        log.info("stored an API key login in %s", self.path)

    def delete(self) -> bool:
        """Remove auth.json; False when there was none. Blocking I/O."""
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            removed = False
        else:
            removed = True
            _fsync_dir(self.path.parent)
            log.info("removed the stored login %s", self.path)
        self._stamp, self._key = None, None
        return removed


def _fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (best effort: not every OS allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
