"""Confining the current process before it execs a sandboxed command (Linux).

This module owns what :mod:`appserver.engine.tools.sandbox_exec` does in the child, in this
order: resource limits (``RLIMIT_NPROC``, ``RLIMIT_FSIZE``, ``RLIMIT_CORE``), dropping every
capability (a server running as root would otherwise hand them to the command),
``PR_SET_NO_NEW_PRIVS``, optionally a Landlock ruleset (read and execute everywhere; write only
beneath the writable roots, never inside their protected ``.git``/``.codex``/``.agents``), and
a seccomp filter (no namespaces, mounts, ptrace, kernel keyring, BPF, io_uring, module or kexec
loading; no sockets but ``AF_UNIX`` when the network is off).

Landlock and seccomp come from the ``landlockpy`` and ``seccompy`` packages (pure Python,
typed, ABI-aware). Only the capability drop is hand-written with :mod:`ctypes` here: it is two
system calls (``prctl(PR_CAPBSET_DROP)`` and ``capset``), for which no maintained pure-Python
binding exists (``python-prctl`` needs a C toolchain and libcap headers).

It must never be called in the server process itself (every step is irreversible) and must
never let a command run when a step fails: :func:`apply` raises and the launcher exits.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "Confinement",
    "Limits",
    "apply",
    "drop_capabilities",
    "landlock_abi",
    "landlock_write_grants",
]


@dataclass(frozen=True)
class Limits:
    """Resource limits set inside the sandbox (soft and hard alike, never raised)."""

    processes: int
    file_size: int


@dataclass(frozen=True)
class Confinement:
    """What the launcher applies: the launcher's one argument, as JSON.

    ``writable``: resolved writable roots (Landlock grants write beneath them);
    ``protected``: paths that stay read-only even inside a writable root; ``landlock``:
    whether to apply Landlock (the bubblewrap backend confines the filesystem itself).
    """

    writable: tuple[str, ...]
    protected: tuple[str, ...]
    network: bool
    landlock: bool
    limits: Limits

    def to_json(self) -> str:
        return json.dumps(
            {
                "writable": list(self.writable),
                "protected": list(self.protected),
                "network": self.network,
                "landlock": self.landlock,
                "limits": {
                    "processes": self.limits.processes,
                    "fileSize": self.limits.file_size,
                },
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Confinement:
        """Parse the launcher's argument; ``ValueError`` when it is malformed."""
        data: Any = json.loads(text)
        try:
            limits = data["limits"]
            out = cls(
                writable=tuple(data["writable"]),
                protected=tuple(data["protected"]),
                network=data["network"],
                landlock=data["landlock"],
                limits=Limits(int(limits["processes"]), int(limits["fileSize"])),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed confinement: {exc}") from None
        paths = (*out.writable, *out.protected)
        if not all(isinstance(p, str) and os.path.isabs(p) for p in paths):
            raise ValueError("malformed confinement: paths must be absolute strings")
        if not isinstance(out.network, bool) or not isinstance(out.landlock, bool):
            raise ValueError("malformed confinement: network and landlock must be booleans")
        return out


def apply(spec: Confinement) -> None:
    """Confine this process (and whatever it execs) as ``spec`` says. Irreversible."""
    _set_limits(spec.limits)
    drop_capabilities()
    _no_new_privs()
    if spec.landlock:
        _landlock(spec)
    _seccomp(network=spec.network)


# -- resource limits ---------------------------------------------------------------------------


def _set_limits(limits: Limits) -> None:
    for which, wanted in (
        (resource.RLIMIT_NPROC, limits.processes),
        (resource.RLIMIT_FSIZE, limits.file_size),
        (resource.RLIMIT_CORE, 0),
    ):
        _soft, hard = resource.getrlimit(which)
        value = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(which, (value, value))


# -- capabilities ------------------------------------------------------------------------------

_PR_SET_NO_NEW_PRIVS = 38
_PR_CAPBSET_DROP = 24
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_CAP_SETPCAP = 8
_LINUX_CAPABILITY_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _status_caps() -> dict[str, int]:
    out: dict[str, int] = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Cap"):
                key, _, value = line.partition(":")
                out[key] = int(value.strip(), 16)
    return out


def drop_capabilities() -> None:
    """Empty the bounding, ambient, effective, permitted and inheritable capability sets.

    For a root process this is what keeps ``uid 0`` from meaning anything more than file
    ownership: with an empty bounding set, not even an ``execve`` gives capabilities back. A
    process that has none (any ordinary user) is left as it is.
    """
    caps = _status_caps()
    if not (caps.get("CapEff") or caps.get("CapPrm") or caps.get("CapAmb")):
        return
    libc = _libc()
    if caps.get("CapEff", 0) & (1 << _CAP_SETPCAP):
        last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
        for cap in range(last + 1):
            _check(libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0), "PR_CAPBSET_DROP")
    with_ambient = libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    if with_ambient != 0 and ctypes.get_errno() != errno.EINVAL:  # EINVAL: kernel < 4.3
        _check(with_ambient, "PR_CAP_AMBIENT_CLEAR_ALL")
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")
    left = _status_caps()
    if left.get("CapEff") or left.get("CapPrm"):
        raise OSError(errno.EPERM, "capabilities are still held after dropping them")


def _no_new_privs() -> None:
    _check(_libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


# -- Landlock ----------------------------------------------------------------------------------


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    try:
        import landlockpy

        return max(0, int(landlockpy.abi_version()))
    except Exception:  # no module, no syscall, LSM not enabled: all mean none
        return 0


def _inside(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def landlock_write_grants(
    writable: tuple[str, ...], protected: tuple[str, ...]
) -> Iterator[tuple[str, bool]]:
    """The ``(path, is_dir)`` rules that give write access to ``writable`` but not ``protected``.

    A Landlock rule grants its rights on a whole hierarchy and no rule can take them back
    beneath it, so a root holding a protected path is not granted as a whole: each of its
    entries is, except the protected ones (and symbolic links, whose rule would land on their
    target), descending into the entries that hold a protected path. The price: in such a
    directory itself nothing can be created, removed or renamed (its existing files can still
    be written), since the rights to do so would reach into the protected path too.
    """
    for root in writable:
        if not os.path.isdir(root) or any(_inside(root, p) for p in protected):
            continue
        yield from _grants_beneath(root, protected)


def _grants_beneath(path: str, protected: tuple[str, ...]) -> Iterator[tuple[str, bool]]:
    if not any(_inside(p, path) for p in protected):
        yield path, True
        return
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        if entry.path in protected or entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            yield from _grants_beneath(entry.path, protected)
        else:
            yield entry.path, False


# Devices every command may write (output redirected to /dev/null, and the like).
_WRITABLE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full")


def _landlock(spec: Confinement) -> None:
    from landlockpy import AccessFS, AccessNet, Ruleset, Scope

    read = AccessFS.EXECUTE | AccessFS.READ_FILE | AccessFS.READ_DIR | AccessFS.RESOLVE_UNIX
    file_write = AccessFS.WRITE_FILE | AccessFS.TRUNCATE | AccessFS.IOCTL_DEV
    dir_write = (
        file_write
        | AccessFS.REMOVE_DIR
        | AccessFS.REMOVE_FILE
        | AccessFS.MAKE_CHAR
        | AccessFS.MAKE_DIR
        | AccessFS.MAKE_REG
        | AccessFS.MAKE_SOCK
        | AccessFS.MAKE_FIFO
        | AccessFS.MAKE_BLOCK
        | AccessFS.MAKE_SYM
        | AccessFS.REFER
    )
    # Every right this code knows, cut down by the library to what the running ABI has
    # (REFER from 2, TRUNCATE from 3, IOCTL_DEV from 5, RESOLVE_UNIX from 9); a right the
    # kernel does not know is neither handled nor needed in a rule.
    scoped = Scope.SIGNAL | (Scope.NONE if spec.network else Scope.ABSTRACT_UNIX_SOCKET)
    with Ruleset(handled_fs=read | dir_write, handled_net=AccessNet.NONE, scoped=scoped) as ruleset:
        if ruleset.abi_version < 1:
            raise OSError(errno.ENOSYS, "Landlock is not available")
        ruleset.allow_path("/", read)
        for device in _WRITABLE_DEVICES:
            if os.path.exists(device):
                ruleset.allow_path(device, file_write)
        for path, is_dir in landlock_write_grants(spec.writable, spec.protected):
            ruleset.allow_path(path, dir_write if is_dir else file_write)
        ruleset.restrict()


# -- seccomp -----------------------------------------------------------------------------------

# Denied with EPERM: they reach outside the sandbox (namespaces, mounts, other processes'
# memory, the kernel keyring, BPF, module and kexec loading, raw I/O ports) or bypass the
# filter (io_uring runs socket operations without the socket syscall).
_DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "unshare",
    "setns",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "keyctl",
    "add_key",
    "request_key",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "open_by_handle_at",
    "name_to_handle_at",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
)
_NAMESPACE_FLAGS = (
    0x00020000,  # CLONE_NEWNS
    0x02000000,  # CLONE_NEWCGROUP
    0x04000000,  # CLONE_NEWUTS
    0x08000000,  # CLONE_NEWIPC
    0x10000000,  # CLONE_NEWUSER
    0x20000000,  # CLONE_NEWPID
    0x40000000,  # CLONE_NEWNET
)
_AF_UNIX = 1
_X32 = 0x40000000  # x86_64's x32 ABI: same arch tag, syscall numbers with this bit set


def _seccomp(*, network: bool) -> None:
    import seccompy
    from seccompy import Action, ArgCmp, CmpOp, Filter

    x32 = seccompy.arch() == "x86_64"
    filt = Filter(default=Action.ALLOW)

    def deny(name: str, error: int = errno.EPERM, args: list[ArgCmp] | None = None) -> None:
        try:
            nr = seccompy.syscall_nr(name)
        except ValueError:  # not a syscall on this architecture (iopl on aarch64)
            return
        filt.errno(nr, error, args=args)
        if x32:
            filt.errno(nr | _X32, error, args=args)

    for name in _DENIED:
        deny(name)
    # clone3 passes its flags in memory, out of a filter's reach: ENOSYS makes libc fall back
    # to clone, whose namespace flags are checked below.
    deny("clone3", errno.ENOSYS)
    for flag in _NAMESPACE_FLAGS:
        deny("clone", args=[ArgCmp(0, CmpOp.MASKED_EQ, flag, mask=flag)])
    if not network:
        deny("socket", args=[ArgCmp(0, CmpOp.NE, _AF_UNIX)])
    if x32:
        # x32-only entry points (512..547: ptrace, process_vm_*, execve, ioctl, ...).
        for nr in range(512, 548):
            filt.errno(nr | _X32, errno.EPERM)
    filt.load()
