"""The host APIs' permission boundary: which connection may touch which paths.

The rule, in one sentence: a client on stdio, on the Unix socket or in-process is the user
who started the server and may reach whatever that user can, while a WebSocket client may use
the host APIs only over an authenticated connection and then only beneath the configured
roots, unless ``[host_api] unrestricted = true``.

In detail:

* ``stdio``, ``unixSocket`` (the socket file is 0600 in a 0700 directory) and ``inProcess``
  connections come from the user who started the server: no root limit, as in the reference.
* ``webSocket`` connections without authentication (a loopback listener started without a
  token or JWT) get -32600 for every host method: any local user or a page that reached the
  port would otherwise run commands as the server's user.
* Authenticated ``webSocket`` connections are limited to the roots: the working directory and
  writable roots of every loaded thread (unless ``[host_api] thread_roots = false``) plus the
  directories listed in ``[host_api] roots``; ``[host_api] unrestricted = true`` lifts the
  limit. A limited connection may not run ``command/exec``.
* ``thread/shellCommand`` on a connection without full access (unauthenticated or limited)
  is the one exception: its handler runs it confined by the thread's own sandbox policy,
  which is what the agent's commands on that thread may do anyway.

Checking a path: it must be absolute and hold no NUL byte; it is then resolved once
(``realpath``: every ``..`` and symbolic link) and the resolved path must lie beneath a
resolved root. The operations (:mod:`appserver.host.fs_ops`) then open the resolved path
walking from ``/`` by directory descriptor with ``O_NOFOLLOW`` (``FdTree``), so a component
swapped for a symbolic link after the check fails the walk, and they check where the opened
directory really is (``/proc/self/fd``) before touching it, so a directory moved out of a
root is refused too. A regular file with more than one hard link is refused to limited
connections (it may be a link to a file outside the roots).

This module must never open a file itself, and never grant more than the rule above.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from appserver.protocol.errors import RpcError, invalid_request

__all__ = [
    "USER_ORIGINS",
    "Access",
    "Boundary",
    "HostApiConfig",
    "HostConfigError",
    "absolute_path",
]

# Transports whose peer is the user who started the server.
USER_ORIGINS = frozenset({"stdio", "unixSocket", "inProcess"})
MAX_PATH_CHARS = 32_768
RELATIVE_PATH_MESSAGE = "Invalid request: AbsolutePathBuf deserialized without a base path"
UNAUTHENTICATED_MESSAGE = (
    "host APIs (fs/*, command/exec, fuzzyFileSearch) need an "
    "authenticated connection: start the WebSocket listener with --ws-token-file, "
    "--ws-token-sha256 or --ws-shared-secret-file, or use stdio or the Unix socket"
)


class ConnectionLike(Protocol):
    @property
    def origin(self) -> str: ...

    @property
    def authenticated(self) -> bool: ...


class HostConfigError(ValueError):
    """``[host_api]`` is malformed; the message names the key."""


@dataclass(frozen=True)
class HostApiConfig:
    """``[host_api]`` in config.toml."""

    roots: tuple[str, ...] = ()
    unrestricted: bool = False
    thread_roots: bool = True

    @classmethod
    def from_config(cls, values: Mapping[str, Any]) -> HostApiConfig:
        table = values.get("host_api")
        if table is None:
            return cls()
        if not isinstance(table, Mapping):
            raise HostConfigError("host_api must be a table")
        roots = table.get("roots", [])
        if not isinstance(roots, list) or not all(isinstance(r, str) for r in roots):
            raise HostConfigError("host_api.roots must be a list of absolute paths")
        for root in roots:
            if not os.path.isabs(root) or "\0" in root:
                raise HostConfigError(f"host_api.roots: {root!r} is not an absolute path")
        flags: dict[str, bool] = {}
        for key, default in (("unrestricted", False), ("thread_roots", True)):
            value = table.get(key, default)
            if not isinstance(value, bool):
                raise HostConfigError(f"host_api.{key} must be true or false")
            flags[key] = value
        return cls(tuple(roots), flags["unrestricted"], flags["thread_roots"])


def absolute_path(raw: str) -> str:
    """``raw`` checked (absolute, no NUL, bounded) and normalised lexically; -32600 if not."""
    if "\0" in raw:
        raise invalid_request("Invalid request: path contains a NUL byte")
    if len(raw) > MAX_PATH_CHARS:
        raise invalid_request(f"Invalid request: path longer than {MAX_PATH_CHARS} characters")
    if not os.path.isabs(raw):
        raise invalid_request(RELATIVE_PATH_MESSAGE)
    path = os.path.normpath(raw)
    # POSIX keeps a leading '//'; it names '/' here.
    return "/" + path.lstrip("/")


def _within(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


@dataclass(frozen=True)
class Access:
    """What one request may touch: everything, or only beneath ``roots`` (resolved)."""

    unrestricted: bool
    roots: tuple[str, ...] = ()

    def allows(self, real: str) -> bool:
        """Whether resolved path ``real`` lies beneath a root."""
        return self.unrestricted or any(_within(real, root) for root in self.roots)

    def check(self, real: str, shown: str) -> None:
        """-32600 unless resolved path ``real`` (asked for as ``shown``) is allowed."""
        if not self.allows(real):
            raise RpcError(
                -32600,
                f"Invalid request: {shown} is outside the roots this connection may use",
                {"reason": "outsideHostRoots"},
            )

    def resolve(self, path: str) -> str:
        """``path`` (checked by :func:`absolute_path`) resolved and checked: -32600 if out."""
        real = os.path.realpath(path)
        self.check(real, path)
        return real

    def resolve_parent(self, path: str) -> tuple[str, str]:
        """The resolved parent of ``path`` and its last component, checked (the entry itself
        is not followed: for ``remove``, a destination, or an ``isSymlink`` look)."""
        parent, name = os.path.split(path)
        real_parent = os.path.realpath(parent) if parent else "/"
        if not name:  # path is "/"
            self.check("/", path)
            return "/", ""
        self.check(os.path.join(real_parent, name), path)
        return real_parent, name


FULL_ACCESS = Access(unrestricted=True)


class Boundary:
    """Decides each connection's :class:`Access` from its transport and the config."""

    def __init__(
        self,
        config: HostApiConfig,
        thread_roots: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.config = config
        self._thread_roots = thread_roots

    def access(self, conn: ConnectionLike) -> Access:
        """The connection's access now, or -32600 when it may not use the host APIs."""
        if self.full_access(conn):
            return FULL_ACCESS
        if not conn.authenticated:
            raise RpcError(-32600, UNAUTHENTICATED_MESSAGE, {"reason": "unauthenticated"})
        return Access(unrestricted=False, roots=self.roots())

    def full_access(self, conn: ConnectionLike) -> bool:
        """Whether the connection may reach everything (``access`` would grant it all)."""
        if conn.origin in USER_ORIGINS:
            return True
        return conn.authenticated and self.config.unrestricted

    def roots(self) -> tuple[str, ...]:
        """The resolved roots of a limited connection (configured first, then threads')."""
        candidates = list(self.config.roots)
        if self.config.thread_roots:
            candidates.extend(self._thread_roots())
        out: list[str] = []
        for root in candidates:
            if not os.path.isabs(root) or "\0" in root:
                continue
            real = os.path.realpath(root)
            if real not in out:
                out.append(real)
        return tuple(out)
