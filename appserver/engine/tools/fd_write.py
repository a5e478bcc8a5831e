"""File writes that follow no symbolic link: every directory reached by descriptor from ``/``.

Owns :class:`FdTree`, which reads, atomically replaces and unlinks files named by absolute,
normalised paths *without ever resolving a symbolic link* on the way: each path is walked from
``/`` one component at a time with ``open(name, O_DIRECTORY | O_NOFOLLOW, dir_fd=parent)``
(missing directories are created the same way), and the file itself is changed relative to
its directory's descriptor — a temporary file created with ``O_CREAT | O_EXCL | O_NOFOLLOW``
next to it, then ``rename(tmp, name, src_dir_fd=, dst_dir_fd=)``; ``unlink(name, dir_fd=)``.
A renamed or unlinked name that is itself a symbolic link is replaced or removed, never
written through. So a directory swapped for a symbolic link after a path was checked makes
the walk fail (``ENOTDIR``); it can never redirect the write.

The caller's ``may_write`` predicate is asked again *under the write*: right before a file is
created, renamed over or unlinked, with the path where its directory is now (the descriptor's
``/proc/self/fd`` link where there is one, else the path walked), so a directory moved
elsewhere after the walk is refused too.

Directories missing on the way are created during the walk (only along the path being
walked, so only where the caller's check already looked). POSIX only: it needs ``O_NOFOLLOW``
and ``dir_fd`` support, and uses ``O_PATH`` where the platform has it.

Reads (to check a file still holds what was planned) follow a symbolic link in the last
component only, as the planning read did, and accept regular files only (``O_NONBLOCK``: a
FIFO cannot block them). This module must never decide what is allowed (``may_write`` does)
and never open a path by name from the current directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable
from types import TracebackType

__all__ = ["FdTree", "MayWrite", "UnsafeWrite"]

MayWrite = Callable[[str], bool]  # the absolute path of the entry about to change

_O_PATH: int = getattr(os, "O_PATH", os.O_RDONLY)
_DIR_FLAGS = _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UnsafeWrite(Exception):
    """A write refused because a path is not what it was (a link, a moved directory)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _split(path: str) -> tuple[str, str]:
    if not os.path.isabs(path) or os.path.normpath(path) != path:
        raise ValueError(f"not an absolute, normalised path: {path!r}")
    parent, name = os.path.split(path)
    if not name:
        raise ValueError(f"no file name in {path!r}")
    return parent, name


class FdTree:
    """Descriptors of the directories touched by one batch of writes (closed on exit)."""

    def __init__(self, may_write: MayWrite | None = None) -> None:
        self.may_write = may_write
        self._dirs: dict[str, int] = {}

    def __enter__(self) -> FdTree:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        for fd in self._dirs.values():
            with contextlib.suppress(OSError):
                os.close(fd)
        self._dirs.clear()

    # -- walking ----------------------------------------------------------------------------
    def directory(self, path: str, *, create: bool) -> int | None:
        """A descriptor of directory ``path``, walked from ``/`` without following links.

        Missing directories are created when ``create``, else the answer is None. A component
        that is a symbolic link or not a directory raises :class:`UnsafeWrite`.
        """
        cached = self._dirs.get(path)
        if cached is not None:
            return cached
        fd = os.open("/", _DIR_FLAGS)
        walked = ""
        try:
            for part in path.split("/"):
                if not part:
                    continue
                here = f"{walked}/{part}"
                try:
                    child = self._open_dir(fd, part, here)
                except FileNotFoundError:
                    if not create:
                        os.close(fd)
                        return None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(part, 0o777, dir_fd=fd)
                    child = self._open_dir(fd, part, here)
                os.close(fd)
                fd, walked = child, here
        except BaseException:
            os.close(fd)
            raise
        self._dirs[path] = fd
        return fd

    @staticmethod
    def _open_dir(parent_fd: int, name: str, shown: str) -> int:
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTDIR, errno.ELOOP):
                raise UnsafeWrite(
                    f"{shown} is not a directory (a symbolic link or a file is there now); "
                    "nothing is written through it"
                ) from None
            raise

    def _check(self, fd: int, parent: str, name: str) -> None:
        if self.may_write is None:
            return
        try:
            where = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            where = parent  # no /proc: the walk itself followed no link to get here
        target = os.path.join(where, name)
        if not where.startswith("/") or not self.may_write(target):
            raise UnsafeWrite(
                f"refusing to write {target}: it is not where the patch was checked "
                f"({os.path.join(parent, name)}) or not writable"
            )

    # -- operations -------------------------------------------------------------------------
    def read(self, path: str) -> bytes | None:
        """The content of regular file ``path``, or None when it does not exist."""
        parent, name = _split(path)
        fd = self.directory(parent, create=False)
        if fd is None:
            return None
        try:
            file_fd = os.open(name, _READ_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            return None
        with os.fdopen(file_fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(file_fd).st_mode):
                raise UnsafeWrite(f"{path} is not a regular file")
            return fh.read()

    def replace(self, path: str, data: bytes) -> None:
        """Make ``path`` a regular file holding ``data``, atomically (temporary + rename).

        An existing regular file keeps its permission bits; a new one gets ``0o666`` less the
        umask. Whatever entry was at ``path`` (a file, a symbolic link) is replaced, never
        written through.
        """
        parent, name = _split(path)
        fd = self.directory(parent, create=True)
        if fd is None:  # pragma: no cover - create=True always answers a descriptor
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), parent)
        self._check(fd, parent, name)
        mode: int | None = None
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                mode = stat.S_IMODE(st.st_mode)
        tmp = f".{name[:40]}.{secrets.token_hex(6)}.tmp"
        tmp_fd = os.open(tmp, _TMP_FLAGS, 0o600 if mode is not None else 0o666, dir_fd=fd)
        try:
            with os.fdopen(tmp_fd, "wb") as fh:
                fh.write(data)
                if mode is not None:
                    os.fchmod(fh.fileno(), mode)
            self._check(fd, parent, name)
            os.rename(tmp, name, src_dir_fd=fd, dst_dir_fd=fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=fd)
            raise

    def unlink(self, path: str) -> None:
        """Remove the entry ``path`` (a symbolic link is removed, not its target)."""
        parent, name = _split(path)
        fd = self.directory(parent, create=False)
        if fd is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        self._check(fd, parent, name)
        os.unlink(name, dir_fd=fd)
