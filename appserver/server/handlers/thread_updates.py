"""``thread/inject_items`` and ``thread/settings/update``: params in, ``thread_updates`` calls,
results out.

Owns the mapping from the wire (a profile id or a sandbox policy, the collaboration mode's
model and effort) to a settings change, and the client's errors (-32600). It must never touch
a thread's history or rollout itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appserver.core.processor import RequestContext
from appserver.engine import permission_profiles, thread_updates
from appserver.engine.manager import ThreadManager
from appserver.engine.tools import sandbox
from appserver.protocol.agent_params import ThreadInjectItemsParams, ThreadSettingsUpdateParams
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope


def wire_approval_policy(policy: str) -> str:
    """``on-failure`` (deprecated, still accepted) is not in the schema's ``AskForApproval``."""
    return "on-request" if policy == "on-failure" else policy


class ThreadUpdateHandlers:
    def __init__(self, manager: ThreadManager) -> None:
        self.manager = manager

    def register(self, r: MethodRegistry) -> None:
        t = Scope.THREAD
        r.register("thread/inject_items", ThreadInjectItemsParams, self.inject_items, scope=t)
        r.register(
            "thread/settings/update",
            ThreadSettingsUpdateParams,
            self.settings_update,
            experimental=True,
            scope=t,
        )

    async def inject_items(self, ctx: RequestContext, p: ThreadInjectItemsParams) -> dict[str, Any]:
        thread = self.manager.get_loaded(p.thread_id)
        try:
            items = thread_updates.check_items(p.items)
        except thread_updates.InvalidItems as exc:
            raise invalid_request(str(exc)) from None
        thread_updates.inject(thread, items, self.manager.recorder(thread))
        return {}

    async def settings_update(
        self, ctx: RequestContext, p: ThreadSettingsUpdateParams
    ) -> dict[str, Any]:
        thread = self.manager.get_loaded(p.thread_id)
        changes: dict[str, Any] = {}
        if p.cwd is not None:
            if "\0" in p.cwd or not Path(p.cwd).is_absolute():
                raise invalid_request("Invalid request: cwd must be an absolute path")
            changes["cwd"] = p.cwd
        cwd = Path(changes.get("cwd", thread.settings.cwd))
        if p.sandbox_policy is not None and p.permissions is not None:
            raise invalid_request(
                "Invalid request: `permissions` cannot be combined with `sandboxPolicy`"
            )
        if p.sandbox_policy is not None:
            try:
                sandbox.SandboxPolicy.from_dict(p.sandbox_policy)
            except ValueError as exc:
                raise invalid_request(f"Invalid request: sandboxPolicy: {exc}") from None
            changes["sandbox_policy"] = p.sandbox_policy
        if p.permissions is not None:
            profile = p.permissions if isinstance(p.permissions, str) else p.permissions.get("id")
            mods = None if isinstance(p.permissions, str) else p.permissions.get("modifications")
            try:
                changes["sandbox_policy"] = permission_profiles.policy_for(
                    str(profile), mods if isinstance(mods, list) else None, cwd
                )
            except ValueError as exc:
                raise invalid_request(f"Invalid request: permissions: {exc}") from None
        if p.approval_policy is not None:
            changes["approval_policy"] = p.approval_policy
        mode = p.collaboration_mode
        mode_settings = mode.settings if mode is not None else None
        model = p.model or (mode_settings.model if mode_settings else None)
        if model is not None:
            changes["model"] = model
        effort = p.effort or (mode_settings.reasoning_effort if mode_settings else None)
        if effort is not None:
            changes["effort"] = effort
        if p.summary is not None:
            changes["summary"] = p.summary
        settings = thread_updates.apply_settings(thread, changes, self.manager.recorder(thread))
        view_mode = None
        if mode is not None:
            view_mode = {
                "mode": mode.mode,
                "settings": {
                    "model": settings.model,
                    "reasoning_effort": settings.effort,
                    "developer_instructions": mode_settings.developer_instructions
                    if mode_settings
                    else None,
                },
            }
        view = thread_updates.settings_view(
            thread, approval_policy=wire_approval_policy(settings.approval_policy), mode=view_mode
        )
        await self.manager.outbox.notify_thread(
            thread.id, "thread/settings/updated", {"threadId": thread.id, "threadSettings": view}
        )
        return {}
