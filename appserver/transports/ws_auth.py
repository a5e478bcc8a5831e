"""Who may open a WebSocket connection: Origin policy and bearer-token authentication.

Owns ``UpgradePolicy``, checked once per HTTP request before the upgrade. Requests carrying an
``Origin`` header are refused (403) unless that origin is explicitly allowed, which blocks
browsers (DNS rebinding, CSRF). With a capability token configured, the upgrade needs
``Authorization: Bearer <token>``; tokens are compared as SHA-256 digests in constant time, so
the server may hold only the digest. Failures say only the reason. This module must never log
a token or a digest.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field


class AuthFailure(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class UpgradePolicy:
    token_sha256: bytes | None = None
    allowed_origins: frozenset[str] = field(default_factory=frozenset)

    @property
    def requires_auth(self) -> bool:
        return self.token_sha256 is not None

    @classmethod
    def from_token(cls, token: str | None, allowed_origins: frozenset[str]) -> UpgradePolicy:
        digest = hashlib.sha256(token.encode()).digest() if token else None
        return cls(digest, allowed_origins)

    def check(self, origin: str | None, authorization: str | None) -> None:
        if origin is not None and origin not in self.allowed_origins:
            raise AuthFailure(403, "origin not allowed")
        if self.token_sha256 is None:
            return
        if authorization is None:
            raise AuthFailure(401, "missing websocket bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailure(401, "invalid authorization header")
        presented = hashlib.sha256(token.strip().encode()).digest()
        if not hmac.compare_digest(presented, self.token_sha256):
            raise AuthFailure(401, "invalid websocket bearer token")
