"""``account/read``, ``account/login/start``, ``account/login/cancel`` and ``account/logout``.

Owns these four handlers and their registration. Login is by API key only: the key goes to
``auth.json`` through ``AuthStore`` and is used by providers with ``requires_openai_auth``
whose environment holds no key. ChatGPT (browser, device code, external tokens) and Amazon
Bedrock logins are refused with -32600. As in Codex, a login or logout is answered first, then
``account/login/completed`` (login only) and ``account/updated`` go to every initialized
connection. Logins and logouts run one at a time, in arrival order (``Scope.SERIAL``: each
one's reply and notifications go out before the next one starts), so the notifications follow
the order of the writes.

It must never log, echo or return an API key (not in a reply, a notification, an error
message or a log line), and never put one in the environment.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from appserver.core.processor import Reply, RequestContext
from appserver.protocol.errors import internal_error, invalid_request
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.protocol.runtime_params import (
    CancelLoginAccountParams,
    GetAccountParams,
    LoginAccountParams,
    LogoutAccountParams,
)
from appserver.server.auth import AuthStore
from appserver.server.catalog import Catalog

if TYPE_CHECKING:
    from appserver.protocol.wire_types import CancelLoginAccountResponse, GetAccountResponse

log = logging.getLogger("appserver.account")

API_KEY_ONLY = "this server supports API-key login only (type `apiKey`)"


def _header_safe(key: str) -> bool:
    """Printable ASCII without spaces: what an ``Authorization: Bearer`` value can carry."""
    return all(0x21 <= ord(c) <= 0x7E for c in key)


class AccountHandlers:
    def __init__(self, catalog: Catalog, auth: AuthStore) -> None:
        self.catalog = catalog
        self.auth = auth

    def register(self, registry: MethodRegistry) -> None:
        registry.register(
            "account/read",
            GetAccountParams,
            self.account_read,
            result="GetAccountResponse",
            scope=Scope.INLINE,
        )
        registry.register(
            "account/login/start",
            LoginAccountParams,
            self.login_start,
            result="LoginAccountResponse",
            scope=Scope.SERIAL,
        )
        registry.register(
            "account/login/cancel",
            CancelLoginAccountParams,
            self.login_cancel,
            result="CancelLoginAccountResponse",
            scope=Scope.INLINE,
        )
        registry.register(
            "account/logout",
            LogoutAccountParams,
            self.logout,
            result="LogoutAccountResponse",
            params_optional=True,
            scope=Scope.SERIAL,
        )

    def _auth_mode(self) -> str | None:
        """``"apikey"`` when a key is stored or the default provider has one in its
        configuration or environment; None otherwise (ChatGPT auth is never active here)."""
        if self.auth.api_key() is not None or self.catalog.api_key_present():
            return "apikey"
        return None

    async def account_read(self, ctx: RequestContext, p: GetAccountParams) -> GetAccountResponse:
        # ``refreshToken`` concerns ChatGPT tokens, which this server never holds.
        return {
            "account": {"type": "apiKey"} if self._auth_mode() == "apikey" else None,
            "requiresOpenaiAuth": self.catalog.requires_openai_auth(),
        }

    async def login_start(self, ctx: RequestContext, p: LoginAccountParams) -> Any:
        if p.type != "apiKey":
            raise invalid_request(f"`{p.type}` login is not supported: {API_KEY_ONLY}")
        if p.api_key is None:
            raise invalid_request("Invalid request: missing field `apiKey`")
        key = p.api_key.strip()
        if not key:
            raise invalid_request("apiKey must not be empty")
        if not _header_safe(key):
            raise invalid_request(
                "apiKey must be printable ASCII without spaces (it is sent as a bearer token)"
            )
        try:
            await asyncio.to_thread(self.auth.save_api_key, key)
        except OSError as exc:
            log.warning("cannot store the API key in %s: %s", self.auth.path, exc.strerror)
            raise internal_error(f"failed to save api key: {exc.strerror}") from None

        async def completed() -> None:
            await ctx.broadcast(
                "account/login/completed", {"loginId": None, "success": True, "error": None}
            )
            await ctx.broadcast("account/updated", {"authMode": "apikey", "planType": None})

        return Reply({"type": "apiKey"}, after=completed)

    async def login_cancel(
        self, ctx: RequestContext, p: CancelLoginAccountParams
    ) -> CancelLoginAccountResponse:
        # An API-key login completes within its request: no login is ever pending.
        return {"status": "notFound"}

    async def logout(self, ctx: RequestContext, p: LogoutAccountParams) -> Any:
        try:
            await asyncio.to_thread(self.auth.delete)
        except OSError as exc:
            log.warning("cannot remove %s: %s", self.auth.path, exc.strerror)
            raise internal_error(f"failed to log out: {exc.strerror}") from None
        # A key in the provider's environment still authenticates: say so, as
        # ``account/read`` would.
        mode = self._auth_mode()

        async def updated() -> None:
            await ctx.broadcast("account/updated", {"authMode": mode, "planType": None})

        return Reply({}, after=updated)
