"""Who may open a WebSocket connection: Origin policy and bearer-token authentication.

Owns ``UpgradePolicy``, checked once per HTTP request before the upgrade. Requests carrying an
``Origin`` header are refused (403) unless that origin is explicitly allowed, which blocks
browsers (DNS rebinding, CSRF). With a capability token configured, the upgrade needs
``Authorization: Bearer <token>``; tokens are compared as SHA-256 digests in constant time, so
the server may hold only the digest. With a shared secret configured (``JwtPolicy``), the
bearer may instead be an HS256 JWT signed with it: ``exp`` is required, ``nbf`` is honoured,
``iss`` and ``aud`` are checked when configured, all within a clock-skew allowance. Failures
are 401 and say only the reason. This module must never log a token, a digest or a secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

import jwt

MIN_SECRET_BYTES = 32  # an HS256 key shorter than its hash output is refused at startup


class AuthFailure(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class JwtPolicy:
    """Signed bearer tokens: HS256 with a shared secret (at least ``MIN_SECRET_BYTES``)."""

    secret: bytes = field(repr=False)
    issuer: str | None = None
    audience: str | None = None
    max_clock_skew_s: int = 30

    def __post_init__(self) -> None:
        if len(self.secret) < MIN_SECRET_BYTES:
            raise ValueError(f"the JWT shared secret must be at least {MIN_SECRET_BYTES} bytes")

    def verify(self, token: str) -> None:
        """Raise ``AuthFailure`` (401, a short reason) unless ``token`` is valid now."""
        try:
            jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.max_clock_skew_s,
                options={"require": ["exp"], "verify_aud": self.audience is not None},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailure(401, "expired websocket jwt") from None
        except jwt.ImmatureSignatureError:
            raise AuthFailure(401, "websocket jwt not yet valid") from None
        except jwt.InvalidIssuerError:
            raise AuthFailure(401, "invalid websocket jwt issuer") from None
        except jwt.InvalidAudienceError:
            raise AuthFailure(401, "invalid websocket jwt audience") from None
        except jwt.MissingRequiredClaimError as exc:
            reason = {
                "iss": "invalid websocket jwt issuer",
                "aud": "invalid websocket jwt audience",
            }.get(exc.claim, f"websocket jwt missing {exc.claim}")
            raise AuthFailure(401, reason) from None
        except jwt.InvalidTokenError:
            raise AuthFailure(401, "invalid websocket jwt") from None


@dataclass(frozen=True)
class UpgradePolicy:
    token_sha256: bytes | None = None
    allowed_origins: frozenset[str] = field(default_factory=frozenset)
    jwt_policy: JwtPolicy | None = None

    @property
    def requires_auth(self) -> bool:
        return self.token_sha256 is not None or self.jwt_policy is not None

    @classmethod
    def from_token(
        cls,
        token: str | None,
        allowed_origins: frozenset[str],
        jwt_policy: JwtPolicy | None = None,
    ) -> UpgradePolicy:
        digest = hashlib.sha256(token.encode()).digest() if token else None
        return cls(digest, allowed_origins, jwt_policy)

    def check(self, origin: str | None, authorization: str | None) -> None:
        if origin is not None and origin not in self.allowed_origins:
            raise AuthFailure(403, "origin not allowed")
        if not self.requires_auth:
            return
        if authorization is None:
            raise AuthFailure(401, "missing websocket bearer token")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthFailure(401, "invalid authorization header")
        if self.token_sha256 is not None:
            presented = hashlib.sha256(token.encode()).digest()
            if hmac.compare_digest(presented, self.token_sha256):
                return
            if self.jwt_policy is None:
                raise AuthFailure(401, "invalid websocket bearer token")
        assert self.jwt_policy is not None
        self.jwt_policy.verify(token)
