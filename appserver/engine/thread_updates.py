"""Changes to a loaded thread outside a turn: ``thread/inject_items`` and
``thread/settings/update``.

Owns the checks on injected Responses items (the reference's wording: ``items[i] is not a
valid response item: …``), appending them to the model history and the rollout (as
``response_item`` lines, so a resumed thread's model sees them), and applying a settings
update (kept as a ``turn_context`` line without a turn, which a resumed thread starts from)
with the ``ThreadSettings`` view ``thread/settings/updated`` carries; ``settings_changes``
maps the request (a profile id or a sandbox policy, the collaboration mode's model and effort)
to those changes. What a client gets wrong is an ``EngineError`` (-32600). It must never start
a turn, and never write a rollout line for a thread that has none yet: settings then wait in
memory and go out with the first turn.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from appserver.engine import permission_profiles
from appserver.engine.errors import EngineError
from appserver.engine.thread_state import LoadedThread, ThreadSettings
from appserver.engine.tools import sandbox
from appserver.protocol.agent_params import ThreadSettingsUpdateParams

if TYPE_CHECKING:
    from appserver.protocol.wire_types import ThreadSettings as WireThreadSettings

Record = Callable[[str, dict[str, Any]], None]

REMOTE_IMAGE_URL_ERROR = "remote image URLs are not supported; use an inline data URL instead"
_ROLES = {"user", "assistant", "system", "developer"}
# Required fields of the ResponseItem kinds a client may inject (others pass as they are, as
# the reference's ``ResponseItem::Other`` does).
_REQUIRED: dict[str, dict[str, type | tuple[type, ...]]] = {
    "message": {"role": str, "content": list},
    "function_call": {"name": str, "arguments": str, "call_id": str},
    "function_call_output": {"call_id": str, "output": (str, list)},
    "custom_tool_call": {"name": str, "input": str, "call_id": str},
    "custom_tool_call_output": {"call_id": str, "output": (str, list)},
    "reasoning": {"summary": list},
}


class InvalidItems(EngineError):
    """The client's items are not valid Responses items (the message says which and why)."""


def check_items(items: list[Any]) -> list[dict[str, Any]]:
    """The items as they will be recorded; raises ``InvalidItems``."""
    checked: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        problem = _problem(item)
        if problem == REMOTE_IMAGE_URL_ERROR:
            raise InvalidItems(problem)
        if problem is not None:
            raise InvalidItems(f"items[{index}] is not a valid response item: {problem}")
        checked.append(dict(item))
    return checked


def _problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "expected an object"
    kind = item.get("type")
    if not isinstance(kind, str):
        return "missing field `type`"
    for key, expected in _REQUIRED.get(kind, {}).items():
        if key not in item:
            return f"missing field `{key}`"
        if not isinstance(item[key], expected):
            return f"invalid type for `{key}`"
    if kind == "message":
        if item["role"] not in _ROLES:
            return f"unknown role `{str(item['role'])[:50]}`"
        for part in item["content"]:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                return "message content parts are objects with a `type`"
            url = part.get("image_url")
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                return REMOTE_IMAGE_URL_ERROR
    return None


def inject(thread: LoadedThread, items: list[dict[str, Any]], record: Record) -> None:
    """Append checked items to the thread's model history, recorded in its rollout."""
    for item in items:
        thread.history.append(item)
        record("response_item", item)


def apply_settings(thread: LoadedThread, changes: dict[str, Any], record: Record) -> ThreadSettings:
    """Apply the given changes (None values are left out by the caller) to the thread's
    settings; recorded for a thread that has a rollout already."""
    thread.settings = replace(thread.settings, **changes)
    if thread.materialized:
        # No turn: a resumed thread starts from the last turn_context (``_settings_from``).
        record("turn_context", {**thread.settings.to_context(""), "turn_id": None})
    return thread.settings


def settings_changes(p: ThreadSettingsUpdateParams, current: ThreadSettings) -> dict[str, Any]:
    """The settings a ``thread/settings/update`` changes (absent or null fields: none)."""
    changes: dict[str, Any] = {}
    if p.cwd is not None:
        if "\0" in p.cwd or not Path(p.cwd).is_absolute():
            raise EngineError("Invalid request: cwd must be an absolute path")
        changes["cwd"] = p.cwd
    cwd = Path(changes.get("cwd", current.cwd))
    if p.sandbox_policy is not None and p.permissions is not None:
        raise EngineError("Invalid request: `permissions` cannot be combined with `sandboxPolicy`")
    if p.sandbox_policy is not None:
        try:
            sandbox.SandboxPolicy.from_dict(p.sandbox_policy)
        except ValueError as exc:
            raise EngineError(f"Invalid request: sandboxPolicy: {exc}") from None
        changes["sandbox_policy"] = p.sandbox_policy
    if p.permissions is not None:
        profile = p.permissions if isinstance(p.permissions, str) else p.permissions.get("id")
        mods = None if isinstance(p.permissions, str) else p.permissions.get("modifications")
        try:
            changes["sandbox_policy"] = permission_profiles.policy_for(
                str(profile), mods if isinstance(mods, list) else None, cwd
            )
        except ValueError as exc:
            raise EngineError(f"Invalid request: permissions: {exc}") from None
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
    return changes


def update(
    thread: LoadedThread, p: ThreadSettingsUpdateParams, record: Record
) -> WireThreadSettings:
    """Apply a ``thread/settings/update`` to the thread; its settings as
    ``thread/settings/updated`` carries them."""
    settings = apply_settings(thread, settings_changes(p, thread.settings), record)
    mode = p.collaboration_mode
    view_mode = None
    if mode is not None:
        view_mode = {
            "mode": mode.mode,
            "settings": {
                "model": settings.model,
                "reasoning_effort": settings.effort,
                "developer_instructions": mode.settings.developer_instructions
                if mode.settings
                else None,
            },
        }
    # ``on-failure`` (deprecated, still accepted) is not in the schema's ``AskForApproval``.
    policy = settings.approval_policy
    view = settings_view(
        thread, approval_policy="on-request" if policy == "on-failure" else policy, mode=view_mode
    )
    return cast("WireThreadSettings", view)


def settings_view(
    thread: LoadedThread, *, approval_policy: str, mode: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The thread's settings as ``thread/settings/updated`` carries them (``ThreadSettings``)."""
    s = thread.settings
    collaboration = mode or {
        "mode": "default",
        "settings": {
            "model": s.model,
            "reasoning_effort": s.effort,
            "developer_instructions": None,
        },
    }
    return {
        "disabledPluginIds": [],
        "cwd": s.cwd,
        "approvalPolicy": approval_policy,
        "approvalsReviewer": "user",
        "sandboxPolicy": s.sandbox_policy,
        "activePermissionProfile": None,
        "model": s.model,
        "modelProvider": s.provider,
        "serviceTier": None,
        "effort": s.effort,
        "summary": s.summary,
        "collaborationMode": collaboration,
        "personality": None,
    }
