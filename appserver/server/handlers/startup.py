"""What a client asks at startup about this server's policy and extensions:
``configRequirements/read``, ``permissionProfile/list``, ``collaborationMode/list``,
``hooks/list``, ``plugin/installed`` and ``account/bedrock/checkGovCloudRequirements``.

Owns these handlers and their registration. Each answer says what this server truly has,
shaped as the reference's: there is no managed (admin/MDM) config layer, so no requirements;
the permission profiles are Codex's three built-in ones, mapped to the sandbox modes
(``engine.permission_profiles``); the collaboration modes are Plan and Default
(``engine.collaboration``); the engine runs no lifecycle hooks and loads no plugins, so those
lists are empty for every directory asked about; no provider here is Amazon Bedrock, so no
GovCloud region is in use. It must never claim a hook, plugin or requirement it does not
enforce.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, cast

from appserver.core.processor import RequestContext
from appserver.engine import collaboration, permission_profiles
from appserver.engine.manager import ThreadManager
from appserver.protocol.client_params import (
    HooksListParams,
    NoParams,
    PermissionProfileListParams,
    PluginInstalledParams,
)
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import (
        CollaborationModeListResponse,
        CollaborationModePreset,
        GovCloudRequirementsResponse,
    )
    from appserver.protocol.wire_types import (
        ConfigRequirementsReadResponse,
        HooksListResponse,
        PermissionProfileListResponse,
        PermissionProfileSummary,
        PluginInstalledResponse,
    )


class StartupHandlers:
    def __init__(self, manager: ThreadManager) -> None:
        self.manager = manager

    def register(self, r: MethodRegistry) -> None:
        i = Scope.INLINE
        r.register(
            "configRequirements/read",
            NoParams,
            self.config_requirements,
            result="ConfigRequirementsReadResponse",
            scope=i,
            params_optional=True,
        )
        r.register(
            "permissionProfile/list",
            PermissionProfileListParams,
            self.profiles,
            result="PermissionProfileListResponse",
            scope=i,
        )
        r.register(
            "collaborationMode/list",
            NoParams,
            self.collaboration_modes,
            result="CollaborationModeListResponse",
            experimental=True,
            scope=i,
            params_optional=True,
        )
        r.register("hooks/list", HooksListParams, self.hooks, result="HooksListResponse", scope=i)
        r.register(
            "plugin/installed",
            PluginInstalledParams,
            self.plugins,
            result="PluginInstalledResponse",
            scope=i,
        )
        r.register(
            "account/bedrock/checkGovCloudRequirements",
            NoParams,
            self.gov_cloud,
            result="GovCloudRequirementsResponse",
            experimental=True,
            scope=i,
            params_optional=True,
        )

    async def config_requirements(
        self, ctx: RequestContext, p: NoParams
    ) -> ConfigRequirementsReadResponse:
        # No requirements.toml / MDM layer exists here; speed modes are not gated at all.
        return {"requirements": None, "supportsIndependentSpeedModes": True}

    async def profiles(
        self, ctx: RequestContext, p: PermissionProfileListParams
    ) -> PermissionProfileListResponse:
        ids = permission_profiles.profile_ids()
        start = 0
        if p.cursor is not None:
            if not p.cursor.isdigit() or int(p.cursor) > len(ids):
                raise invalid_request(f"invalid cursor: {p.cursor}")
            start = int(p.cursor)
        end = len(ids) if not p.limit else min(len(ids), start + p.limit)
        data: list[PermissionProfileSummary] = [
            {"id": i, "description": None, "allowed": True} for i in ids[start:end]
        ]
        return {"data": data, "nextCursor": str(end) if end < len(ids) else None}

    async def collaboration_modes(
        self, ctx: RequestContext, p: NoParams
    ) -> CollaborationModeListResponse:
        presets = [dict(preset) for preset in collaboration.PRESETS]
        return {"data": cast("list[CollaborationModePreset]", presets)}

    def _cwds(self, cwds: list[str] | None, thread_id: str | None) -> list[str]:
        if thread_id is not None:
            thread = self.manager.loaded.get(thread_id)
            if thread is None:
                raise invalid_request(f"thread not loaded: {thread_id}")
            return [thread.settings.cwd]
        return list(cwds) if cwds else [os.getcwd()]

    async def hooks(self, ctx: RequestContext, p: HooksListParams) -> HooksListResponse:
        return {
            "data": [
                {"cwd": cwd, "hooks": [], "warnings": [], "errors": []}
                for cwd in self._cwds(p.cwds, p.thread_id)
            ]
        }

    async def plugins(
        self, ctx: RequestContext, p: PluginInstalledParams
    ) -> PluginInstalledResponse:
        return {"marketplaces": [], "marketplaceLoadErrors": []}

    async def gov_cloud(self, ctx: RequestContext, p: NoParams) -> GovCloudRequirementsResponse:
        return {"isGovCloud": False, "shouldWarn": False}
