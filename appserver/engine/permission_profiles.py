"""Codex's built-in permission profiles, mapped onto this server's sandbox modes.

Owns the profile ids (``:read-only``, ``:workspace``, ``:danger-full-access``, the ones the
reference lists), their mode, and ``policy_for``: a client's selection (the profile id, or the
legacy ``{type: "profile", id, modifications}`` object) turned into the v2 ``SandboxPolicy``
dict the turn runs with. There are no user-defined ``[permissions.<id>]`` profiles here, so
any other id is refused. It must never widen a selection: a modification may only add a
writable root to the workspace profile.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from appserver.engine.tools import sandbox

# Profile id → sandbox mode, in the order ``permissionProfile/list`` gives them.
BUILTIN_PROFILES: dict[str, str] = {
    ":read-only": "read-only",
    ":workspace": "workspace-write",
    ":danger-full-access": "danger-full-access",
}


def profile_ids() -> list[str]:
    return list(BUILTIN_PROFILES)


def policy_for(profile_id: str, modifications: list[Any] | None, cwd: Path) -> dict[str, Any]:
    """The sandbox policy of a built-in profile. Raises ``ValueError`` (the message is for
    the client) for an unknown id or a modification this profile cannot take."""
    mode = BUILTIN_PROFILES.get(profile_id)
    if mode is None:
        known = ", ".join(f"`{p}`" for p in BUILTIN_PROFILES)
        raise ValueError(f"unknown built-in profile `{profile_id[:100]}`; expected one of {known}")
    policy = sandbox.from_mode(mode, cwd)
    for i, change in enumerate(modifications or []):
        kind = change.get("type") if isinstance(change, dict) else None
        path = change.get("path") if isinstance(change, dict) else None
        if kind != "additionalWritableRoot" or not isinstance(path, str):
            raise ValueError(f"modifications.{i}: expected {{type: additionalWritableRoot, path}}")
        if not os.path.isabs(path):
            raise ValueError(f"modifications.{i}.path must be an absolute path")
        if policy["type"] == "readOnly":
            raise ValueError(f"profile `{profile_id}` is read-only: it takes no writable roots")
        if policy["type"] == "workspaceWrite" and path not in policy["writableRoots"]:
            policy["writableRoots"].append(path)
    return policy


def profile_of(policy: dict[str, Any]) -> str | None:
    """The built-in profile a sandbox policy corresponds to, if it is one of theirs."""
    kind = policy.get("type")
    return {
        "readOnly": ":read-only",
        "workspaceWrite": ":workspace",
        "dangerFullAccess": ":danger-full-access",
    }.get(str(kind))
