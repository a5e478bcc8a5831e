"""Sandbox policy: which paths a turn may write, and how to confine a command on Linux.

This module owns the v2 ``SandboxPolicy`` shapes (spec §3.13), the writable-root rules used to
vet file changes before they are applied (with the ``.git``/``.codex``/``.agents`` directories
at the top of each writable root kept read-only), the choice of a sandbox backend, and the
command line that confines a shell command with it:

- ``bubblewrap``: ``bwrap`` in a new user, mount, pid (and, without network, network)
  namespace with every capability dropped, ``/`` read-only and the writable roots bound
  read-write, then the launcher below for limits and seccomp;
- ``landlock``: no privileges or namespaces needed (so it works in a default container): the
  launcher (:mod:`appserver.engine.tools.sandbox_exec`) applies limits, drops capabilities,
  then Landlock for the filesystem and seccomp for the network and dangerous system calls.

``APPSERVER_SANDBOX_BACKEND`` (``auto``, ``bubblewrap``, ``landlock`` or ``none``) picks one;
``auto`` takes the first that works here. It must never run the confined command itself
(``shell.run_command`` does) and must never silently fall back to running unconfined: with no
working backend :func:`wrap_command` returns ``None`` and the caller has to ask instead.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from appserver.engine.tools import confine

__all__ = [
    "Backend",
    "SandboxPolicy",
    "backend",
    "backend_problem",
    "bwrap_available",
    "candidates",
    "enforcement",
    "from_mode",
    "is_path_writable",
    "limits",
    "protected_paths",
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


PROTECTED_NAMES = (".git", ".codex", ".agents")


def protected_paths(roots: list[Path]) -> list[Path]:
    """Paths that stay read-only inside the writable ``roots`` (resolved, deduplicated).

    For each root: its top-level ``.git`` (directory, or the pointer file of a worktree and
    the git directory it names), ``.codex`` and ``.agents``, when they exist. Writing them
    would let a command plant a git hook or ``core.fsmonitor``, or change the agent's own
    configuration, and so run code outside the sandbox later. One that does not exist is not
    protected: a command may ``git init`` a new repository.
    """
    out: list[Path] = []

    def add(path: Path) -> None:
        real = Path(os.path.realpath(path))
        if real not in out and real not in roots:
            out.append(real)

    for root in roots:
        for name in PROTECTED_NAMES:
            path = root / name
            if not path.exists():
                continue
            add(path)
            if name == ".git" and path.is_file():
                target = _gitdir_target(path)
                if target is not None:
                    add(target)
    return [p for p in out if not any(p != q and p.is_relative_to(q) for q in out)]


def _gitdir_target(pointer: Path) -> Path | None:
    try:
        first = pointer.read_text(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return None
    if not first.startswith("gitdir:"):
        return None
    target = pointer.parent / first.removeprefix("gitdir:").strip()
    return target if target.exists() else None


def _within(path: Path, top: Path) -> bool:
    return path == top or path.is_relative_to(top)


def is_path_writable(path: Path | str, policy: PolicyLike, cwd: Path) -> bool:
    """Whether writing ``path`` (relative to ``cwd`` or absolute) is allowed by ``policy``.

    The path is resolved first, so ``..`` cannot climb out and a symlink inside a root that
    points outside it is not writable. Paths inside :func:`protected_paths` are not writable
    either: a patch is held to the same rules as a sandboxed command.
    """
    pol = _policy(policy)
    if pol.full_access:
        return True
    roots = writable_roots(pol, cwd)
    if not roots:
        return False
    real = _real(path, cwd)
    if not any(_within(real, r) for r in roots):
        return False
    return not any(_within(real, p) for p in protected_paths(roots))


# -- backends ----------------------------------------------------------------------------------

Backend = Literal["bubblewrap", "landlock"]
BACKEND_ENV = "APPSERVER_SANDBOX_BACKEND"  # auto (default) | bubblewrap | landlock | none
BACKEND_CHOICES = ("auto", "bubblewrap", "landlock", "none")
MAX_PROCESSES_ENV = "APPSERVER_SANDBOX_MAX_PROCESSES"
MAX_FILE_SIZE_ENV = "APPSERVER_SANDBOX_MAX_FILE_SIZE"
DEFAULT_MAX_PROCESSES = 1024
DEFAULT_MAX_FILE_SIZE = 1 << 30  # 1 GiB
_PROBE_TIMEOUT_S = 20


def backend_setting() -> str:
    """The ``APPSERVER_SANDBOX_BACKEND`` value (lower-cased; empty means ``auto``)."""
    return os.environ.get(BACKEND_ENV, "").strip().lower() or "auto"


def limits() -> confine.Limits:
    """The resource limits applied inside the sandbox (environment, else the defaults)."""
    return confine.Limits(
        processes=_positive_env(MAX_PROCESSES_ENV, DEFAULT_MAX_PROCESSES),
        file_size=_positive_env(MAX_FILE_SIZE_ENV, DEFAULT_MAX_FILE_SIZE),
    )


def _positive_env(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


def launcher_argv(spec: confine.Confinement, argv: list[str]) -> list[str]:
    """``argv`` run through :mod:`appserver.engine.tools.sandbox_exec` under ``spec``."""
    # -I: neither the working directory (the workspace) nor PYTHON* variables may shape the
    # imports that run before the confinement holds; the package's own directory is put
    # back explicitly.
    top = str(Path(confine.__file__).resolve().parents[3])  # the directory holding appserver/
    boot = (
        f"import sys; sys.path.insert(0, {top!r}); "
        "from appserver.engine.tools.sandbox_exec import main; main()"
    )
    return [sys.executable, "-I", "-c", boot, spec.to_json(), "--", *argv]


def _spec(pol: SandboxPolicy, cwd: Path, *, landlock: bool) -> confine.Confinement:
    roots = [r for r in writable_roots(pol, cwd) if r.is_dir()]
    return confine.Confinement(
        writable=tuple(str(r) for r in roots),
        protected=tuple(str(p) for p in protected_paths(roots)),
        network=pol.network_access,
        landlock=landlock,
        limits=limits(),
    )


def _bwrap_argv(bwrap: str, pol: SandboxPolicy, cwd: Path, chdir: Path) -> list[str]:
    spec = _spec(pol, cwd, landlock=False)
    # A new user namespace even for root, and no capabilities in it: a root server's command
    # can then neither remount / read-write nor use any other privilege.
    out = [bwrap, "--unshare-user", "--cap-drop", "ALL"]
    out += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    # Parents before children so a nested root's bind is not hidden by its parent's; the
    # protected paths last, so that they stay read-only within every root.
    for root in sorted(spec.writable, key=lambda p: len(Path(p).parts)):
        out += ["--bind", root, root]
    for path in spec.protected:
        out += ["--ro-bind", path, path]
    if not pol.network_access:
        out.append("--unshare-net")
    out += ["--unshare-pid", "--die-with-parent", "--new-session", "--chdir", str(chdir), "--"]
    return out + launcher_argv(spec, [])


def _probe(argv: list[str]) -> str | None:
    """Run a probe command; None when it worked, else why not (short)."""
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    if done.returncode == 0:
        return None
    lines = done.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else f"exit status {done.returncode}"


_PROBE_POLICY = SandboxPolicy("readOnly")
# Found whatever PATH is (the probe's answer is cached for the life of the process).
_PROBE_COMMAND = [sys.executable, "-I", "-c", ""]


@functools.cache
def _bwrap_problem(bwrap: str) -> str | None:
    # The very flags wrap_command uses (user, pid and network namespaces, no capabilities,
    # the launcher's seccomp filter): in some containers plain `--ro-bind / /` works but a
    # namespace is refused.
    cwd = Path("/")
    return _probe([*_bwrap_argv(bwrap, _PROBE_POLICY, cwd, cwd), *_PROBE_COMMAND])


@functools.cache
def _landlock_problem() -> str | None:
    if not sys.platform.startswith("linux"):
        return "not Linux"
    if confine.landlock_abi() < 1:
        return "the kernel offers no Landlock"
    spec = _spec(_PROBE_POLICY, Path("/"), landlock=True)
    return _probe(launcher_argv(spec, _PROBE_COMMAND))


def backend_problem(name: Backend) -> str | None:
    """Why backend ``name`` cannot confine commands here, or None when it works (probed once)."""
    if name == "bubblewrap":
        bwrap = shutil.which("bwrap")
        return "bwrap is not installed" if bwrap is None else _bwrap_problem(bwrap)
    return _landlock_problem()


def candidates() -> tuple[Backend, ...]:
    """The backends :func:`backend` tries, in order, as ``APPSERVER_SANDBOX_BACKEND`` says.

    ``auto``: bubblewrap, then Landlock; a backend's name: only that one; ``none`` or an
    unknown value (the startup warning names it): none.
    """
    setting = backend_setting()
    if setting == "auto":
        return ("bubblewrap", "landlock")
    if setting == "bubblewrap":
        return ("bubblewrap",)
    if setting == "landlock":
        return ("landlock",)
    return ()


def backend() -> Backend | None:
    """The backend confining restricted commands here, or None (then they are asked about)."""
    return next((b for b in candidates() if backend_problem(b) is None), None)


def bwrap_available() -> bool:
    """Whether the bubblewrap backend is the one in use here (probed once, cached)."""
    return backend() == "bubblewrap"


def enforcement(policy: PolicyLike) -> str:
    """``sandboxEnforcement``: ``none`` (full access), the backend, or ``approval``."""
    if _policy(policy).full_access:
        return "none"
    return backend() or "approval"


def wrap_command(
    argv: list[str],
    policy: PolicyLike,
    cwd: Path,
    *,
    chdir: Path | None = None,
    using: Backend | None = None,
) -> list[str] | None:
    """``argv`` confined according to ``policy``, or None if that is impossible here.

    ``cwd`` is the thread's working directory, which the policy's roots are relative to;
    ``chdir`` (default ``cwd``) is where the command starts. They differ when a command asks
    for another working directory, which must not thereby become writable. ``using`` forces a
    backend (tests); by default :func:`backend` chooses.

    Full access: ``argv`` unchanged. Otherwise writes outside the writable roots (and inside
    their protected paths) fail, there is no network unless allowed, and the limits of
    :func:`limits` hold (see the module docstring for each backend).
    """
    pol = _policy(policy)
    if pol.full_access:
        return list(argv)
    chosen = using if using is not None else backend()
    if chosen is None or backend_problem(chosen) is not None:
        return None
    start = Path(os.path.abspath(cwd if chdir is None else chdir))
    if chosen == "bubblewrap":
        bwrap = shutil.which("bwrap")
        assert bwrap is not None  # backend_problem said it works
        return [*_bwrap_argv(bwrap, pol, cwd, start), *argv]
    return launcher_argv(_spec(pol, cwd, landlock=True), argv)
