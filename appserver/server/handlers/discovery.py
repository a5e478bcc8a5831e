"""``model/list``, ``config/read`` and ``mock/experimentalMethod``.

Owns these three handlers and their registration (the ``account/*`` methods are in
``account.py``). They read the loaded config and never mutate it. ``config/read`` redacts
anything that can hold a secret: values under secret-looking keys (literal bearer tokens),
every ``http_headers`` value whatever the header's name (header values are credentials in
general), secret query parameters, URL credentials inside any string (a ``base_url``'s
``user:pass@`` or ``?key=``), and any known credential value. The variable *names* in
``env_key`` and ``env_http_headers`` are shown. API keys live in the environment or in
auth.json and are never read here.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any, cast

import orjson

from appserver.core.processor import RequestContext
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.protocol.runtime_params import (
    ConfigReadParams,
    MockExperimentalMethodParams,
    ModelListParams,
)
from appserver.server.catalog import Catalog, model_entry
from appserver.server.config import LoadedConfig
from appserver.store.redaction import redact_text, secret_param

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import MockExperimentalMethodResponse
    from appserver.protocol.wire_types import ConfigReadResponse, Model, ModelListResponse

DEFAULT_PAGE = 50
REDACTED = "[redacted]"
_SECRET_WORDS = ("token", "secret", "key", "auth", "password", "cookie")


_ALL_VALUES_SECRET = frozenset({"http_headers", "headers"})
_NAMES_ONLY = frozenset({"env_http_headers"})  # header name → variable name


def redact(value: Any, key: str = "", parent: str = "") -> Any:
    if isinstance(value, dict):
        return {k: redact(v, k, key) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, key, parent) for v in value]
    if not isinstance(value, str):
        return value
    lowered = key.lower()
    if parent in _ALL_VALUES_SECRET:
        return REDACTED
    if parent == "query_params":
        return REDACTED if secret_param(key) else value
    if (
        parent not in _NAMES_ONLY
        and any(w in lowered for w in _SECRET_WORDS)
        and not lowered.endswith("env_key")
        and lowered != "env_key_instructions"
        and not lowered.endswith("_env_var")
    ):
        return REDACTED
    return redact_text(value)


class DiscoveryHandlers:
    def __init__(self, config: LoadedConfig, catalog: Catalog) -> None:
        self.config = config
        self.catalog = catalog

    def register(self, registry: MethodRegistry) -> None:
        registry.register(
            "model/list",
            ModelListParams,
            self.model_list,
            result="ModelListResponse",
            scope=Scope.INLINE,
        )
        registry.register(
            "config/read",
            ConfigReadParams,
            self.config_read,
            result="ConfigReadResponse",
            scope=Scope.INLINE,
        )
        registry.register(
            "mock/experimentalMethod",
            MockExperimentalMethodParams,
            self.mock_experimental,
            result="MockExperimentalMethodResponse",
            experimental=True,
            scope=Scope.INLINE,
        )

    async def model_list(self, ctx: RequestContext, p: ModelListParams) -> ModelListResponse:
        cat = self.catalog
        provider = p.model_provider or cat.default_provider
        if not cat.has(provider):
            raise invalid_request(f"unknown model provider: {provider}")
        slugs = cat.model_slugs(provider)
        start = 0
        if p.cursor is not None:
            if not p.cursor.isdigit() or int(p.cursor) > len(slugs):
                raise invalid_request(f"invalid cursor: {p.cursor}")
            start = int(p.cursor)
        limit = p.limit or DEFAULT_PAGE
        page = slugs[start : start + limit]
        name = cat.display_name(provider)
        data = [model_entry(s, name, s == cat.default_model) for s in page]
        end = start + len(page)
        more = str(end) if end < len(slugs) else None
        return {"data": cast("list[Model]", data), "nextCursor": more}

    async def config_read(self, ctx: RequestContext, p: ConfigReadParams) -> ConfigReadResponse:
        cfg = self.config
        values = redact(cfg.snapshot())
        if values.get("approval_policy") == "on-failure":
            # Deprecated, and not in the schema's AskForApproval: clients would reject the
            # response (as thread/start reports it, see handlers/threads.py).
            values["approval_policy"] = "on-request"
        values.setdefault("model", self.catalog.default_model)
        values.setdefault("model_provider", self.catalog.default_provider)
        version = "sha256:" + hashlib.sha256(orjson.dumps(cfg.values)).hexdigest()[:16]
        user_layer = {"type": "user", "file": str(cfg.path)}
        origins = {
            key: {
                "name": user_layer if origin == "user" else {"type": "sessionFlags"},
                "version": version,
            }
            for key, origin in cfg.origins.items()
        }
        result: dict[str, Any] = {"config": values, "origins": origins}
        if p.include_layers:
            result["layers"] = [{"name": user_layer, "version": version, "config": values}]
        return cast("ConfigReadResponse", result)

    async def mock_experimental(
        self, ctx: RequestContext, p: MockExperimentalMethodParams
    ) -> MockExperimentalMethodResponse:
        return {"echoed": p.value}
