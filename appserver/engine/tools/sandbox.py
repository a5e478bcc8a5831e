"""Sandbox policy: which paths a turn may write, and how to confine a command with bubblewrap.

This module owns the v2 ``SandboxPolicy`` shapes (spec §3.13), the writable-root rules used to
vet file changes before they are applied, and building the ``bwrap`` command line that
enforces the same rules for shell commands on Linux.

It must never run the confined command itself (``shell.run_command`` does) and must never
silently fall back to running unconfined: when bubblewrap is missing, :func:`wrap_command`
returns ``None`` and the caller has to ask for approval instead.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "SandboxPolicy",
    "bwrap_available",
    "from_mode",
    "is_path_writable",
    "wrap_command",
    "writable_roots",
]

PolicyType = Literal["dangerFullAccess", "readOnly", "workspaceWrite", "externalSandbox"]
SandboxMode = Literal["read-only", "workspace-write", "danger-full-access"]


@dataclass(frozen=True)
class SandboxPolicy:
    """A parsed v2 ``SandboxPolicy``.

    ``externalSandbox`` means something outside this server already confines the process, so
    it is treated like ``dangerFullAccess`` here; its ``networkAccess`` string
    (``"enabled"``/``"restricted"``) is mapped to a bool.
    """

    type: PolicyType
    writable_roots: tuple[Path, ...] = ()
    network_access: bool = False
    exclude_tmpdir_env_var: bool = False
    exclude_slash_tmp: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SandboxPolicy:
        """Build from the wire dict. Raises ``ValueError`` for an unknown or malformed one."""
        kind = data.get("type")
        known = ("type", "writableRoots", "networkAccess", "excludeTmpdirEnvVar", "excludeSlashTmp")
        # Fields from older/newer protocol versions (e.g. readOnlyAccess) are kept, not lost.
        extra = {k: v for k, v in data.items() if k not in known}
        if kind == "dangerFullAccess":
            return cls("dangerFullAccess", extra=extra)
        if kind == "externalSandbox":
            return cls(
                "externalSandbox",
                network_access=data.get("networkAccess") == "enabled",
                extra=extra,
            )
        if kind == "readOnly":
            return cls("readOnly", network_access=_bool(data, "networkAccess"), extra=extra)
        if kind == "workspaceWrite":
            roots = data.get("writableRoots") or []
            if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
                raise ValueError("workspaceWrite.writableRoots must be a list of strings")
            return cls(
                "workspaceWrite",
                writable_roots=tuple(Path(r) for r in roots),
                network_access=_bool(data, "networkAccess"),
                exclude_tmpdir_env_var=_bool(data, "excludeTmpdirEnvVar"),
                exclude_slash_tmp=_bool(data, "excludeSlashTmp"),
                extra=extra,
            )
        raise ValueError(f"unknown sandbox policy type: {kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """The wire dict (inverse of :meth:`from_dict`)."""
        out: dict[str, Any] = dict(self.extra)
        out["type"] = self.type
        if self.type == "readOnly":
            out["networkAccess"] = self.network_access
        elif self.type == "externalSandbox":
            out["networkAccess"] = "enabled" if self.network_access else "restricted"
        elif self.type == "workspaceWrite":
            out["writableRoots"] = [str(r) for r in self.writable_roots]
            out["networkAccess"] = self.network_access
            out["excludeTmpdirEnvVar"] = self.exclude_tmpdir_env_var
            out["excludeSlashTmp"] = self.exclude_slash_tmp
        return out

    @property
    def full_access(self) -> bool:
        return self.type in ("dangerFullAccess", "externalSandbox")


def _bool(data: Mapping[str, Any], key: str) -> bool:
    value = data.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise ValueError(f"sandbox policy field {key} must be a boolean")
    return value


PolicyLike = SandboxPolicy | Mapping[str, Any]


def _policy(policy: PolicyLike) -> SandboxPolicy:
    return policy if isinstance(policy, SandboxPolicy) else SandboxPolicy.from_dict(policy)


def from_mode(mode: SandboxMode | str, cwd: Path) -> dict[str, Any]:
    """The v2 policy dict for a ``thread/start`` ``sandbox`` mode string.

    ``/tmp`` and ``$TMPDIR`` are not listed in ``writableRoots``: they are implied by
    ``excludeSlashTmp``/``excludeTmpdirEnvVar`` being false (see :func:`writable_roots`).
    """
    if mode == "read-only":
        return {"type": "readOnly", "networkAccess": False}
    if mode == "workspace-write":
        return {
            "type": "workspaceWrite",
            "writableRoots": [os.path.abspath(cwd)],
            "networkAccess": False,
            "excludeTmpdirEnvVar": False,
            "excludeSlashTmp": False,
        }
    if mode == "danger-full-access":
        return {"type": "dangerFullAccess"}
    raise ValueError(f"unknown sandbox mode: {mode!r}")


def _real(path: Path | str, cwd: Path) -> Path:
    # realpath resolves every existing component (symlinks and '..'), and lexically
    # normalises the part that does not exist yet; a path that does not exist is thereby
    # judged by its nearest existing ancestor, resolved.
    return Path(os.path.realpath(os.path.join(os.fspath(cwd), os.fspath(path))))


def writable_roots(policy: PolicyLike, cwd: Path) -> list[Path]:
    """Resolved directories the policy lets a turn write under (deduplicated, in order).

    read-only: none. full access: ``[/]``. workspaceWrite: the listed roots, ``cwd``, then
    ``/tmp`` and ``$TMPDIR`` unless excluded. Roots that do not exist are kept (a later
    ``mkdir`` can make them real); :func:`wrap_command` skips them.
    """
    pol = _policy(policy)
    if pol.full_access:
        return [Path("/")]
    if pol.type == "readOnly":
        return []
    candidates: list[Path | str] = [*pol.writable_roots, cwd]
    if not pol.exclude_slash_tmp:
        candidates.append("/tmp")
    tmpdir = os.environ.get("TMPDIR")
    if tmpdir and not pol.exclude_tmpdir_env_var:
        candidates.append(tmpdir)
    out: list[Path] = []
    for c in candidates:
        real = _real(c, cwd)
        if real not in out:
            out.append(real)
    return out


def is_path_writable(path: Path | str, policy: PolicyLike, cwd: Path) -> bool:
    """Whether writing ``path`` (relative to ``cwd`` or absolute) is allowed by ``policy``.

    The path is resolved first, so ``..`` cannot climb out and a symlink inside a root that
    points outside it is not writable.
    """
    pol = _policy(policy)
    if pol.full_access:
        return True
    roots = writable_roots(pol, cwd)
    if not roots:
        return False
    real = _real(path, cwd)
    return any(real == r or real.is_relative_to(r) for r in roots)


@functools.cache
def _probe(bwrap: str) -> bool:
    # Use the same kinds of namespaces wrap_command asks for: in some containers plain
    # `--ro-bind / /` works but a network or pid namespace is refused.
    try:
        done = subprocess.run(
            [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
             "--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session", "true"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=10,
            check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


DISABLE_ENV = "APPSERVER_SANDBOX_BACKEND"  # "none" turns bubblewrap off (restricted → ask)


def _bwrap() -> str | None:
    """The working bubblewrap binary, or None (absent, broken, or switched off by env)."""
    if os.environ.get(DISABLE_ENV, "").strip().lower() == "none":
        return None
    bwrap = shutil.which("bwrap")
    return bwrap if bwrap is not None and _probe(bwrap) else None


def bwrap_available() -> bool:
    """Whether bubblewrap is installed and actually works here (probed once, cached)."""
    return _bwrap() is not None


def wrap_command(
    argv: list[str], policy: PolicyLike, cwd: Path, *, chdir: Path | None = None
) -> list[str] | None:
    """``argv`` confined according to ``policy``, or None if that is impossible here.

    ``cwd`` is the thread's working directory, which the policy's roots are relative to;
    ``chdir`` (default ``cwd``) is where the command starts. They differ when a command asks
    for another working directory, which must not thereby become writable.

    Full access: ``argv`` unchanged. Otherwise the whole filesystem is mounted read-only with
    each existing writable root bound read-write on top, a private ``/dev`` and ``/proc``,
    no network unless allowed, and a private pid namespace so that killing bwrap takes every
    process of the command with it.
    """
    pol = _policy(policy)
    if pol.full_access:
        return list(argv)
    bwrap = _bwrap()
    if bwrap is None:
        return None
    out = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # Parents before children so a nested root's bind is not hidden by its parent's.
    for root in sorted(writable_roots(pol, cwd), key=lambda p: len(p.parts)):
        if root.is_dir():
            out += ["--bind", str(root), str(root)]
    if not pol.network_access:
        out.append("--unshare-net")
    out += [
        "--unshare-pid",
        "--die-with-parent",
        "--new-session",
        "--chdir",
        os.path.abspath(cwd if chdir is None else chdir),
        "--",
        *argv,
    ]
    return out
