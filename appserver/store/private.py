"""Private files and directories under the home: directories 0700, files 0600.

Owns the modes of everything the server creates under ``$APPSERVER_HOME`` (rollouts, their
``sessions/YYYY/MM/DD`` folders, ``archived_sessions``, the SQLite index and its ``-wal`` and
``-shm`` files, ``auth.json``) and tightening a home that already exists with looser
permissions. Modes are set explicitly (``mkdir``/``open`` with the mode, then ``chmod``), so
they hold whatever the process umask is; the server never changes its umask, so the commands
the agent runs keep the user's own (their files are the user's, not the server's).

It must never loosen a mode, follow a symlink it is tightening, or touch anything outside the
path it is given.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600

log = logging.getLogger("appserver.store")


def ensure_home(home: Path) -> None:
    """Create ``home`` with mode 0700, or tighten an existing one (group/other bits cleared).

    Parents of the home that are missing are created like ``mkdir -p`` would (they are not
    the server's). A home owned by another user is left alone with a warning.
    """
    home.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(home, DIR_MODE)
        os.chmod(home, DIR_MODE)
        return
    st = os.stat(home)
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o077:
        return
    if st.st_uid != os.geteuid():
        log.warning("home %s (mode %04o) belongs to another user; not changing it", home, mode)
        return
    try:
        os.chmod(home, mode & 0o700)
    except OSError as exc:
        log.warning("cannot restrict home %s (mode %04o): %s", home, mode, exc.strerror)
        return
    log.info(
        "restricted home %s from mode %04o to %04o (other users could read it)",
        home,
        mode,
        mode & 0o700,
    )


def ensure_dir(path: Path) -> None:
    """``mkdir -p path`` where every directory it creates gets mode 0700.

    Directories that already exist are left as they are (under a 0700 home nobody else can
    reach them anyway).
    """
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIR_MODE)
            os.chmod(directory, DIR_MODE)


def open_file(path: Path, flags: int) -> int:
    """``os.open(path, flags | O_CREAT)`` with the file made 0600 if it has wider bits."""
    fd = os.open(path, flags | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        restrict_fd(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


def restrict_fd(fd: int) -> None:
    """Clear group/other bits of the open file ``fd`` (no-op when already private)."""
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        os.fchmod(fd, mode & 0o600)


def restrict_file(path: Path) -> None:
    """Clear group/other bits of an existing regular file (missing files are ignored)."""
    with contextlib.suppress(FileNotFoundError):
        st = os.lstat(path)
        if stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) & 0o077:
            os.chmod(path, stat.S_IMODE(st.st_mode) & 0o600)


def create_file(path: Path) -> None:
    """Make sure ``path`` exists as a 0600 file (created empty if missing)."""
    os.close(open_file(path, os.O_RDONLY))
