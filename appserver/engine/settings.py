"""Settings resolution: what a thread, and each of its turns, runs with.

Owns ``resolve_thread`` (a new, resumed or forked thread's effective settings: the request's
overrides, then its ``config`` map, then the base thread's, then the server's defaults) and
``resolve_turn`` (``turn/start``'s overrides on the thread's settings, which persist), with
the checks on what a client may set: config override values, cwd, sandbox policy and
permission profiles. The server's config and model catalog come in as ``Defaults``. A bad
value is an ``EngineError`` naming it (the server answers -32600). It must never do I/O.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, get_args

from appserver.engine import permission_profiles
from appserver.engine.errors import EngineError
from appserver.engine.thread_config import merge_overrides, tool_switches
from appserver.engine.thread_state import ThreadSettings
from appserver.engine.tools import sandbox
from appserver.protocol.thread_params import (
    ApprovalPolicy,
    Effort,
    SandboxMode,
    Summary,
    ThreadOverrides,
    TurnStartParams,
)


class Defaults(Protocol):
    """What a new thread gets when the request does not say: the server's model catalog and
    config (``server.catalog.Catalog`` and ``server.config.LoadedConfig`` together)."""

    @property
    def default_provider(self) -> str: ...

    @property
    def default_model(self) -> str: ...

    def has(self, provider: str) -> bool: ...

    def config(self, key: str, default: Any = None) -> Any: ...


# ``config`` overrides read here, and the values each may take (None: any string).
_CONFIG_OVERRIDES: dict[str, tuple[str, ...] | None] = {
    "model": None,
    "model_provider": None,
    "approval_policy": get_args(ApprovalPolicy),
    "sandbox_mode": get_args(SandboxMode),
    "model_reasoning_effort": get_args(Effort),
    "model_reasoning_summary": get_args(Summary),
}


def _check_config_overrides(extra: dict[str, Any]) -> None:
    """A ``config`` override of the wrong type or value is the client's error (-32600)."""
    for key, allowed in _CONFIG_OVERRIDES.items():
        value = extra.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise EngineError(f"Invalid request: config.{key}: expected a string")
        if allowed is not None and value not in allowed:
            raise EngineError(
                f"Invalid request: config.{key}: unknown variant `{value[:100]}`, expected one "
                "of " + ", ".join(f"`{a}`" for a in allowed)
            )


def profile_policy(permissions: str | dict[str, Any], cwd: Path) -> dict[str, Any]:
    """The sandbox policy of a ``permissions`` selection (a profile id, or the legacy
    ``{type: "profile", id, modifications}`` object); a bad one is the client's error."""
    modifications: Any = None
    if isinstance(permissions, str):
        profile_id = permissions
    else:
        given, modifications = permissions.get("id"), permissions.get("modifications")
        if permissions.get("type") != "profile" or not isinstance(given, str):
            raise EngineError(
                "Invalid request: permissions: expected a profile id or {type: profile, id}"
            )
        profile_id = given
        if modifications is not None and not isinstance(modifications, list):
            raise EngineError("Invalid request: permissions.modifications: expected a list")
    try:
        return permission_profiles.policy_for(profile_id, modifications, cwd)
    except ValueError as exc:
        raise EngineError(f"Invalid request: permissions: {exc}") from None


def resolve_thread(
    p: ThreadOverrides, defaults: Defaults, base: ThreadSettings | None = None
) -> ThreadSettings:
    """The settings a thread runs with: ``p``'s overrides, its ``config`` map, then ``base``
    (the thread resumed or forked), then ``defaults``."""
    extra = merge_overrides(p.config or {})
    _check_config_overrides(extra)
    # Not inherited on fork nor kept on disk: each request's own map decides (as Codex).
    tools = tool_switches(extra, p.environments)
    if p.cwd is not None and "\0" in p.cwd:
        raise EngineError("Invalid request: cwd must not contain a NUL character")
    cwd_text = p.cwd or (base.cwd if base else os.getcwd())
    cwd = Path(cwd_text)
    if not cwd.is_absolute():
        cwd = Path(os.getcwd()) / cwd
    provider = (
        p.model_provider
        or extra.get("model_provider")
        or (base.provider if base else defaults.default_provider)
    )
    if not defaults.has(provider):
        raise EngineError(f"unknown model provider: {provider}")
    model = p.model or extra.get("model") or (base.model if base else defaults.default_model)
    approval = (
        p.approval_policy
        or extra.get("approval_policy")
        or (base.approval_policy if base else defaults.config("approval_policy", "on-request"))
    )
    mode = p.sandbox or extra.get("sandbox_mode")
    if p.permissions is not None:
        if mode is not None:
            raise EngineError("Invalid request: `permissions` cannot be combined with `sandbox`")
        policy = profile_policy(p.permissions, cwd)
    elif mode is not None or base is None:
        try:
            policy = sandbox.from_mode(mode or defaults.config("sandbox_mode", "read-only"), cwd)
        except ValueError as exc:
            raise EngineError(f"Invalid request: {exc}") from None
    else:
        policy = base.sandbox_policy
    return ThreadSettings(
        model=str(model),
        provider=str(provider),
        cwd=str(cwd),
        approval_policy=str(approval),
        sandbox_policy=policy,
        effort=extra.get("model_reasoning_effort")
        or (base.effort if base else defaults.config("model_reasoning_effort")),
        summary=extra.get("model_reasoning_summary")
        or (base.summary if base else defaults.config("model_reasoning_summary")),
        base_instructions=p.base_instructions or (base.base_instructions if base else None),
        developer_instructions=p.developer_instructions
        or (base.developer_instructions if base else defaults.config("developer_instructions")),
        tools=tools,
    )


def resolve_turn(p: TurnStartParams, settings: ThreadSettings) -> ThreadSettings:
    """``turn/start``'s overrides (and its collaboration mode's model and effort) on the
    thread's settings; the result persists for later turns."""
    cwd = p.cwd
    if cwd is not None and not Path(cwd).is_absolute():
        raise EngineError("cwd must be an absolute path")
    if cwd is not None and "\0" in cwd:
        raise EngineError("Invalid request: cwd must not contain a NUL character")
    sandbox_policy = p.sandbox_policy
    if sandbox_policy is not None:
        try:
            sandbox.SandboxPolicy.from_dict(sandbox_policy)
        except ValueError as exc:
            raise EngineError(f"Invalid request: sandboxPolicy: {exc}") from None
    if p.permissions is not None:
        if sandbox_policy is not None:
            raise EngineError(
                "Invalid request: `permissions` cannot be combined with `sandboxPolicy`"
            )
        sandbox_policy = profile_policy(p.permissions, Path(cwd or settings.cwd))
    mode = p.collaboration_mode.settings if p.collaboration_mode is not None else None
    return settings.with_overrides(
        model=p.model or (mode.model if mode else None),
        cwd=cwd,
        approval_policy=p.approval_policy,
        sandbox_policy=sandbox_policy,
        effort=p.effort or (mode.reasoning_effort if mode else None),
        summary=p.summary,
    )
