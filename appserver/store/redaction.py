"""Keeping credentials out of what the server writes: rollouts and log lines.

Owns two things. ``redact_url_credentials`` masks the credentials a URL can carry inside any
text: the user-info part (``http://user:pass@host`` → ``http://[redacted]@host``) and the
values of query parameters whose names say they are secret (``key``, ``api_key``, ``token``,
``access_token``, ``sig``, ``signature``, ``password``, ``secret``, ``code``, ...). And
``KNOWN``, the registry of exact credential values the server holds (the API key stored by a
login, the providers' keys, bearer tokens and credential headers, a base URL's password):
every rollout line is written with them replaced by ``[redacted]`` (so a command that prints
``auth.json`` or the user pasting the key leaves no copy on disk) and every log line too.

Values shorter than ``MIN_SECRET_CHARS`` are not registered: replacing short common strings
would corrupt ordinary text. It must never log, repr or return a registered value.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import parse_qsl, urlsplit

import orjson

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8

_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<userinfo>[^/\s@\"'<>]+)@")
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;](?P<name>[A-Za-z0-9_.\-\[\]]+)=)(?P<value>[^&#\s\"'<>]*)")
_SECRET_PARAM_WORDS = ("key", "token", "secret", "sig", "pass", "auth", "credential", "pwd")
_SECRET_PARAMS = frozenset({"code", "x-amz-security-token", "x-goog-signature"})


def secret_param(name: str) -> bool:
    """Whether a query parameter (or header) named ``name`` carries a credential."""
    lowered = name.lower()
    return lowered in _SECRET_PARAMS or any(w in lowered for w in _SECRET_PARAM_WORDS)


def redact_url_credentials(text: str) -> str:
    """``text`` with URL user-info and secret query-parameter values masked."""
    if "://" not in text and "=" not in text:
        return text
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)

    def query(m: re.Match[str]) -> str:
        if m["value"] and secret_param(m["name"]):
            return f"{m['lead']}{REDACTED}"
        return m.group(0)

    return _QUERY_PARAM.sub(query, text)


def url_secrets(url: str) -> list[str]:
    """The credential values inside ``url``: its password (or token user) and the values of
    secret query parameters, for registering with ``KNOWN``."""
    try:
        parts = urlsplit(url)
        found = [parts.password or parts.username or ""]
        found += [v for k, v in parse_qsl(parts.query) if secret_param(k)]
    except ValueError:
        return []
    return [v for v in found if v]


class KnownSecrets:
    """Exact credential values to blank out of rollouts and logs (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: frozenset[str] = frozenset()
        self._encoded: tuple[bytes, ...] = ()

    def __repr__(self) -> str:
        return f"KnownSecrets({len(self._values)} values)"

    def register(self, *values: str | None) -> None:
        fresh = {v.strip() for v in values if v and len(v.strip()) >= MIN_SECRET_CHARS}
        with self._lock:
            if fresh <= self._values:
                return
            merged = self._values | fresh
            # Longest first: a value containing another is replaced whole.
            ordered = sorted(merged, key=len, reverse=True)
            encoded: list[bytes] = []
            for value in ordered:
                raw = value.encode()
                escaped = orjson.dumps(value)[1:-1]  # as it appears inside a JSON string
                encoded += [raw] if raw == escaped else [raw, escaped]
            self._values, self._encoded = merged, tuple(encoded)

    def clear(self) -> None:
        with self._lock:
            self._values, self._encoded = frozenset(), ()

    def scrub_bytes(self, data: bytes) -> bytes:
        for value in self._encoded:
            if value in data:
                data = data.replace(value, REDACTED.encode())
        return data

    def scrub(self, text: str) -> str:
        for value in sorted(self._values, key=len, reverse=True):
            if value in text:
                text = text.replace(value, REDACTED)
        return text


KNOWN = KnownSecrets()


def redact_text(text: str) -> str:
    """``text`` without known credential values or URL credentials (for log lines)."""
    return redact_url_credentials(KNOWN.scrub(text))
