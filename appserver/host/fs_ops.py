"""The ``fs/*`` operations, each opening paths the boundary checked without following links.

Owns reading, atomic writing, creating directories, metadata, listing, removing and copying.
Every path is resolved and checked by an :class:`~appserver.host.boundary.Access` first; the
directory holding the entry is then reached from ``/`` by descriptor with ``O_NOFOLLOW``
(:class:`~appserver.engine.tools.fd_write.FdTree`), checked again where it really is
(``/proc/self/fd``), and the entry is opened relative to it with ``O_NOFOLLOW``. A symbolic
link appearing anywhere after the check makes the call fail instead of escaping.

Errors: a path problem found before touching the disk is -32600; what the OS refuses is
-32603 with the OS's message, worded as the reference words it (``No such file or directory
(os error 2)``). Blocking calls: the handlers run these functions in a worker thread. This
module must never decide who may do what (the boundary does) and never open a path by name
from the current directory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appserver.engine.tools.fd_write import FdTree, UnsafeWrite
from appserver.host.boundary import Access
from appserver.protocol.errors import RpcError, internal_error, invalid_request

if TYPE_CHECKING:
    from appserver.protocol.wire_types import FsGetMetadataResponse, FsReadDirectoryEntry

__all__ = [
    "MAX_READ_BYTES",
    "copy",
    "create_directory",
    "get_metadata",
    "os_error",
    "read_directory",
    "read_file",
    "remove",
    "write_file",
]

MAX_READ_BYTES = 256 * 1024 * 1024
_FILE_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_DIR_READ = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def os_error(exc: OSError) -> RpcError:
    """-32603 with the OS message as the reference words it (Rust's ``io::Error``)."""
    if exc.errno is None:
        return internal_error(str(exc))
    return internal_error(f"{exc.strerror or os.strerror(exc.errno)} (os error {exc.errno})")


def _unsafe(exc: UnsafeWrite) -> RpcError:
    return invalid_request(f"Invalid request: {exc.message}", {"reason": "pathChanged"})


@contextlib.contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except UnsafeWrite as exc:
        raise _unsafe(exc) from None
    except OSError as exc:
        raise os_error(exc) from None


def _missing(path: str) -> OSError:
    return FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)


@dataclass
class _Dir:
    """A directory opened by descriptor and checked to be where the access allows."""

    tree: FdTree
    fd: int
    path: str


def _open_dir(tree: FdTree, access: Access, real: str) -> _Dir:
    """Walk to directory ``real`` (resolved) by descriptor; check where it really is."""
    fd = tree.directory(real, create=False)
    if fd is None:
        raise _missing(real)
    try:
        where = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        where = real  # no /proc: the walk itself followed no link
    if not where.startswith("/") or not access.allows(where):
        raise UnsafeWrite(f"{real} moved outside the roots during the call")
    return _Dir(tree, fd, where)


def _read_fd(fd: int, access: Access, shown: str) -> bytes:
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), shown)
    if not stat.S_ISREG(st.st_mode):
        raise invalid_request(f"Invalid request: {shown} is not a regular file")
    if not access.unrestricted and st.st_nlink > 1:
        raise invalid_request(
            f"Invalid request: {shown} has {st.st_nlink} hard links; a file linked from "
            "outside the roots is not readable over this connection",
            {"reason": "hardLink"},
        )
    if st.st_size > MAX_READ_BYTES:
        raise invalid_request(f"Invalid request: {shown} is larger than {MAX_READ_BYTES} bytes")
    chunks: list[bytes] = []
    total = 0
    while chunk := os.read(fd, 1 << 20):
        total += len(chunk)
        if total > MAX_READ_BYTES:
            raise invalid_request(f"Invalid request: {shown} is larger than {MAX_READ_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _open_file(d: _Dir, name: str) -> int:
    try:
        return os.open(name, _FILE_READ, dir_fd=d.fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeWrite(f"{d.path}/{name} became a symbolic link during the call") from None
        raise


def read_file(access: Access, path: str) -> bytes:
    real = access.resolve(path)
    parent, name = os.path.split(real)
    with _errors(), FdTree() as tree:
        d = _open_dir(tree, access, parent)
        fd = _open_file(d, name)
        try:
            return _read_fd(fd, access, path)
        finally:
            os.close(fd)


def _replace(d: _Dir, name: str, data: bytes) -> None:
    """Make ``name`` in ``d`` a regular file holding ``data``: temporary file + rename."""
    mode: int | None = None
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(name, dir_fd=d.fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        if stat.S_ISREG(st.st_mode):
            mode = stat.S_IMODE(st.st_mode)
    tmp = f".{name[:40]}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, _TMP_FLAGS, 0o600 if mode is not None else 0o666, dir_fd=d.fd)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
        os.rename(tmp, name, src_dir_fd=d.fd, dst_dir_fd=d.fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=d.fd)
        raise


def write_file(access: Access, path: str, data: bytes) -> None:
    """Atomic: readers see the old content or the new, never a part. A symbolic link at
    ``path`` is followed once, at the check (as the reference writes through it); the entry
    replaced is the resolved one."""
    real = access.resolve(path)
    parent, name = os.path.split(real)
    if not name:
        raise os_error(IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR)))
    with _errors(), FdTree() as tree:
        _replace(_open_dir(tree, access, parent), name, data)


def create_directory(access: Access, path: str, recursive: bool) -> None:
    real = access.resolve(path)
    with _errors(), FdTree() as tree:
        if recursive:
            fd = tree.directory(real, create=True)
            assert fd is not None
            _open_dir(tree, access, real)  # the check of where it ended up
            return
        parent, name = os.path.split(real)
        if not name:
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), real)
        d = _open_dir(tree, access, parent)
        os.mkdir(name, 0o777, dir_fd=d.fd)


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def get_metadata(access: Access, path: str) -> FsGetMetadataResponse:
    parent, name = access.resolve_parent(path)
    real = access.resolve(path)  # the target, when the entry is a link
    with _errors(), FdTree() as tree:
        d = _open_dir(tree, access, parent)
        st = os.stat(name or ".", dir_fd=d.fd, follow_symlinks=False)
        is_link = stat.S_ISLNK(st.st_mode)
        if is_link:
            target_parent, target_name = os.path.split(real)
            td = _open_dir(tree, access, target_parent)
            with contextlib.suppress(FileNotFoundError):  # a dangling link: its own metadata
                st = os.stat(target_name or ".", dir_fd=td.fd, follow_symlinks=False)
    return {
        "isDirectory": stat.S_ISDIR(st.st_mode),
        "isFile": stat.S_ISREG(st.st_mode),
        "isSymlink": is_link,
        # Linux keeps no creation time in stat(); the reference reports 0 there.
        "createdAtMs": 0,
        "modifiedAtMs": _ms(st.st_mtime),
    }


def read_directory(access: Access, path: str) -> list[FsReadDirectoryEntry]:
    """Direct children. A limited connection is not told what a symbolic link points at
    (both flags false for a link); a full one gets the link's target type, as the
    reference."""
    real = access.resolve(path)
    entries: list[FsReadDirectoryEntry] = []
    with _errors(), FdTree() as tree:
        d = _open_dir(tree, access, real)
        fd = os.open(".", _DIR_READ, dir_fd=d.fd)
        try:
            with os.scandir(fd) as it:
                for entry in it:
                    follow = access.unrestricted
                    try:
                        is_dir = entry.is_dir(follow_symlinks=follow)
                        is_file = entry.is_file(follow_symlinks=follow)
                    except OSError:
                        is_dir = is_file = False
                    entries.append(
                        {"fileName": entry.name, "isDirectory": is_dir, "isFile": is_file}
                    )
        finally:
            os.close(fd)
    entries.sort(key=lambda e: e["fileName"])
    return entries


def remove(access: Access, path: str, recursive: bool, force: bool) -> None:
    """Remove the entry at ``path``: a symbolic link is removed, never what it points at; a
    tree is removed by descriptor (``shutil.rmtree``'s fd-based walk, which follows no
    link)."""
    import shutil

    parent, name = access.resolve_parent(path)
    if not name:
        raise invalid_request("Invalid request: refusing to remove /")
    with _errors(), FdTree() as tree:
        try:
            d = _open_dir(tree, access, parent)
            st = os.stat(name, dir_fd=d.fd, follow_symlinks=False)
        except FileNotFoundError:
            if force:
                return
            raise
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=d.fd)
        elif recursive:
            shutil.rmtree(name, dir_fd=d.fd)
        else:
            os.rmdir(name, dir_fd=d.fd)


def copy(access: Access, source: str, destination: str, recursive: bool) -> None:
    """Copy a file (following a link at ``source``, as the reference) or, with
    ``recursive``, a directory tree, walked by descriptor; links inside a tree are copied
    as links. The destination's entry is replaced for a file, created for a tree."""
    real_src = access.resolve(source)
    dst_parent, dst_name = access.resolve_parent(destination)
    if not dst_name:
        raise invalid_request("Invalid request: cannot copy onto /")
    real_dst = os.path.join(dst_parent, dst_name)
    src_parent, src_name = os.path.split(real_src)
    with _errors(), FdTree() as tree:
        sd = _open_dir(tree, access, src_parent)
        st = os.stat(src_name or ".", dir_fd=sd.fd, follow_symlinks=False)
        if stat.S_ISDIR(st.st_mode):
            if not recursive:
                raise invalid_request(
                    "Invalid request: fs/copy requires recursive: true when sourcePath is a "
                    "directory"
                )
            if real_dst == real_src or real_dst.startswith(real_src.rstrip("/") + "/"):
                raise invalid_request("Invalid request: cannot copy a directory into itself")
            dd = _open_dir(tree, access, dst_parent)
            src_fd = os.open(src_name or ".", _DIR_READ, dir_fd=sd.fd)
            try:
                _copy_tree(access, src_fd, dd.fd, dst_name, real_src)
            finally:
                os.close(src_fd)
            return
        fd = _open_file(sd, src_name)
        try:
            data = _read_fd(fd, access, source)
        finally:
            os.close(fd)
        _replace(_open_dir(tree, access, dst_parent), dst_name, data)


def _copy_tree(access: Access, src_fd: int, dst_parent_fd: int, name: str, shown: str) -> None:
    os.mkdir(name, 0o777, dir_fd=dst_parent_fd)
    dst_fd = os.open(name, _DIR_READ, dir_fd=dst_parent_fd)
    try:
        with os.scandir(src_fd) as it:
            entries = list(it)
        for entry in entries:
            st = entry.stat(follow_symlinks=False)
            child = f"{shown}/{entry.name}"
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(entry.name, dir_fd=src_fd), entry.name, dir_fd=dst_fd)
            elif stat.S_ISDIR(st.st_mode):
                sub = os.open(entry.name, _DIR_READ, dir_fd=src_fd)
                try:
                    _copy_tree(access, sub, dst_fd, entry.name, child)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(st.st_mode):
                fd = os.open(entry.name, _FILE_READ, dir_fd=src_fd)
                try:
                    data = _read_fd(fd, access, child)
                finally:
                    os.close(fd)
                out = os.open(entry.name, _TMP_FLAGS, stat.S_IMODE(st.st_mode), dir_fd=dst_fd)
                with os.fdopen(out, "wb") as fh:
                    fh.write(data)
            # Sockets, FIFOs and devices are not copied.
    finally:
        os.close(dst_fd)
