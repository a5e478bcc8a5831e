"""``modelProvider/list``, ``modelProvider/capabilities/read``, ``modelProvider/config/write``,
``experimentalFeature/list`` and ``experimentalFeature/enablement/set``: views of the config
layer and the writes on it.

Owns these handlers, the ``ModelProviderSummary`` view of a provider (its auth shown as the
*name* of its key variable, never a value; a base URL with credentials in it shown as null),
and ``FEATURES``, the ``[features]`` flags this server acts on. A provider write is a
``[model_providers.<id>]`` table written through the same writer and live reload as
``config/value/write``. Only custom gateways (an OpenAI-compatible Responses endpoint) can be
written: Bedrock and Vertex need cloud SDKs this server does not have (-32600).

It must never report a capability the engine does not offer the model, or a feature flag it
does not act on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from appserver.core.processor import RequestContext
from appserver.engine.providers.config import BUILTIN_PROVIDER_IDS, ProviderInfo
from appserver.protocol.config_params import (
    ExperimentalFeatureEnablementSetParams,
    ExperimentalFeatureListParams,
    ModelProviderCapabilitiesReadParams,
    ModelProviderConfigWriteParams,
    ModelProviderListParams,
)
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.server.catalog import Catalog
from appserver.server.config_write import Edit
from appserver.server.handlers.config_write import ConfigWriteService
from appserver.store.redaction import redact_url_credentials

if TYPE_CHECKING:
    from appserver.protocol.wire_types import (
        ExperimentalFeature,
        ExperimentalFeatureEnablementSetResponse,
        ExperimentalFeatureListResponse,
        ModelProviderCapabilitiesReadResponse,
        ModelProviderConfigWriteResponse,
        ModelProviderListResponse,
        ModelProviderSummary,
    )

DEFAULT_PAGE = 50
NEW_PROVIDER_ID = "custom-gateway"
_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Feature:
    name: str
    stage: str
    default_enabled: bool


# The flags the engine reads (``engine.thread_config``): a thread's ``config`` overrides them.
FEATURES: tuple[Feature, ...] = (Feature("shell_tool", "stable", True),)


def provider_summary(info: ProviderInfo, can_edit: bool) -> ModelProviderSummary:
    if info.id == "openai":
        settings: dict[str, Any] = {"type": "openai"}
    else:
        auth: dict[str, Any] = (
            {"mode": "environmentVariable", "envKey": info.env_key}
            if info.env_key
            else {"mode": "none"}
        )
        settings = {"type": "customGateway", "auth": auth}
    base_url = info.base_url
    safe = base_url is not None and redact_url_credentials(base_url) == base_url
    return {
        "id": info.id,
        "name": info.name,
        "baseUrl": base_url if safe else None,
        "canEdit": can_edit,
        "settings": cast("Any", settings),
    }


class ModelProviderHandlers:
    def __init__(self, catalog: Catalog, service: ConfigWriteService) -> None:
        self.catalog = catalog
        self.service = service

    @property
    def _config(self) -> Any:
        return self.service.live.config

    def register(self, r: MethodRegistry) -> None:
        i = Scope.INLINE
        r.register(
            "modelProvider/list",
            ModelProviderListParams,
            self.provider_list,
            result="ModelProviderListResponse",
            scope=i,
        )
        r.register(
            "modelProvider/capabilities/read",
            ModelProviderCapabilitiesReadParams,
            self.capabilities,
            result="ModelProviderCapabilitiesReadResponse",
            scope=i,
            params_optional=True,
        )
        r.register(
            "modelProvider/config/write",
            ModelProviderConfigWriteParams,
            self.write,
            result="ModelProviderConfigWriteResponse",
        )
        r.register(
            "experimentalFeature/list",
            ExperimentalFeatureListParams,
            self.features,
            result="ExperimentalFeatureListResponse",
            scope=i,
        )
        r.register(
            "experimentalFeature/enablement/set",
            ExperimentalFeatureEnablementSetParams,
            self.set_enablement,
            result="ExperimentalFeatureEnablementSetResponse",
            scope=i,
        )

    def _can_edit(self, provider_id: str) -> bool:
        # What ``write`` accepts: a provider of the user's own, not shadowed by a -c override.
        origins = self._config.origins
        shadowed = any(
            k.startswith(f"model_providers.{provider_id}.") and o == "override"
            for k, o in origins.items()
        )
        return provider_id not in BUILTIN_PROVIDER_IDS and not shadowed

    async def provider_list(
        self, ctx: RequestContext, p: ModelProviderListParams
    ) -> ModelProviderListResponse:
        cat = self.catalog
        data = [provider_summary(info, self._can_edit(pid)) for pid, info in cat.providers.items()]
        return {
            "data": data,
            "defaultProviderId": cat.default_provider,
            "canChangeDefault": self._config.origins.get("model_provider") != "override",
        }

    async def capabilities(
        self, ctx: RequestContext, p: ModelProviderCapabilitiesReadParams
    ) -> ModelProviderCapabilitiesReadResponse:
        if p.model_provider is not None and not self.catalog.has(p.model_provider):
            raise invalid_request(f"unknown model provider: {p.model_provider}")
        # The engine offers the model neither hosted tool, whatever the provider.
        return {"imageGeneration": False, "webSearch": False}

    async def write(
        self, ctx: RequestContext, p: ModelProviderConfigWriteParams
    ) -> ModelProviderConfigWriteResponse:
        s = p.settings
        if s.type != "customGateway":
            raise invalid_request(
                f"Invalid request: `{s.type}` providers are not supported by this server; "
                "only `customGateway` (an OpenAI-compatible Responses endpoint)"
            )
        given = s.model_fields_set
        provider_id = s.provider_id or self._new_id()
        if not _ID_RE.match(provider_id):
            raise invalid_request(f"Invalid request: invalid provider id: {provider_id!r}")
        if provider_id in BUILTIN_PROVIDER_IDS:
            raise invalid_request(
                f"Invalid request: `{provider_id}` is a built-in provider and cannot be edited"
            )
        exists = provider_id in self.catalog.providers
        if s.provider_id is not None and not exists:
            raise invalid_request(f"Invalid request: unknown model provider: {provider_id}")
        prefix = f'model_providers."{provider_id}"'
        edits: list[Edit] = []
        if not exists:
            if not s.name or not s.base_url:
                raise invalid_request(
                    "Invalid request: a new custom gateway needs a `name` and a `baseUrl`"
                )
            edits.append(Edit(f"{prefix}.wire_api", "responses"))
        for field, key in (("name", "name"), ("base_url", "base_url"), ("env_key", "env_key")):
            if field in given:
                value = getattr(s, field)
                if field == "name" and value is None:
                    raise invalid_request("Invalid request: `name` cannot be cleared")
                edits.append(Edit(f"{prefix}.{key}", value))
        await self.service.write(edits)
        info = self.catalog.providers[provider_id]
        return {"provider": provider_summary(info, self._can_edit(provider_id))}

    def _new_id(self) -> str:
        taken = set(self.catalog.providers)
        n = 1
        while (candidate := NEW_PROVIDER_ID if n == 1 else f"{NEW_PROVIDER_ID}-{n}") in taken:
            n += 1
        return candidate

    def _enabled(self, feature: Feature) -> bool:
        features = self._config.get("features")
        value = features.get(feature.name) if isinstance(features, dict) else None
        return value if isinstance(value, bool) else feature.default_enabled

    async def features(
        self, ctx: RequestContext, p: ExperimentalFeatureListParams
    ) -> ExperimentalFeatureListResponse:
        start = 0
        if p.cursor is not None:
            if not p.cursor.isdigit() or int(p.cursor) > len(FEATURES):
                raise invalid_request(f"invalid cursor: {p.cursor}")
            start = int(p.cursor)
        end = min(len(FEATURES), start + (p.limit or DEFAULT_PAGE))
        data: list[ExperimentalFeature] = [
            {
                "name": f.name,
                "stage": cast("Any", f.stage),
                "displayName": None,
                "description": None,
                "announcement": None,
                "enabled": self._enabled(f),
                "defaultEnabled": f.default_enabled,
            }
            for f in FEATURES[start:end]
        ]
        return {"data": data, "nextCursor": str(end) if end < len(FEATURES) else None}

    async def set_enablement(
        self, ctx: RequestContext, p: ExperimentalFeatureEnablementSetParams
    ) -> ExperimentalFeatureEnablementSetResponse:
        known = {f.name for f in FEATURES}
        unknown = sorted(set(p.enablement) - known)
        if unknown:
            raise invalid_request(
                f"Invalid request: unknown feature {unknown[0]!r}; known: " + ", ".join(known)
            )
        for name, enabled in p.enablement.items():
            self.service.live.set_feature(name, enabled)
        return {"enablement": dict(p.enablement)}
