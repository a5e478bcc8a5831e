"""Where thread files live under ``$CODEX_HOME``.

Owns the directory names (``sessions/YYYY/MM/DD/``, ``archived_sessions/``, ``state.sqlite``),
the rollout file name of a new thread, and walking the rollout files on disk (name + stat).
Must never: open the SQLite index, read or write a rollout's contents, or move files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    """The paths of one home directory (absolute, not resolved: the caller's spelling)."""

    home: Path
    sessions_dir: Path
    archived_dir: Path
    db_path: Path

    @classmethod
    def of(cls, home: Path) -> Layout:
        # Absolute so stored paths are absolute.
        home = home.absolute()
        return cls(home, home / "sessions", home / "archived_sessions", home / "state.sqlite")

    def rollout_path_for(self, thread_id: str, created_at: datetime) -> Path:
        """Where a new thread's rollout goes: ``sessions/YYYY/MM/DD/rollout-...-<id>.jsonl``."""
        moment = as_utc(created_at)
        name = f"rollout-{moment:%Y-%m-%dT%H-%M-%S}-{thread_id}.jsonl"
        return self.sessions_dir / f"{moment:%Y}" / f"{moment:%m}" / f"{moment:%d}" / name

    def scan_files(self) -> list[FileStat]:
        """Every rollout file, live and archived, sorted by path."""
        found = [
            *walk_rollouts(self.sessions_dir, archived=False),
            *walk_rollouts(self.archived_dir, archived=True),
        ]
        found.sort(key=lambda f: str(f.path))
        return found


@dataclass(frozen=True)
class FileStat:
    """One rollout file as found on disk; ``archived`` is where it lives."""

    path: Path
    mtime_ns: int
    size: int
    archived: bool


def walk_rollouts(root: Path, *, archived: bool) -> Iterator[FileStat]:
    if not root.is_dir():
        return
    for dirpath, _dirnames, filenames in os.walk(root):
        for filename in filenames:
            if not (filename.startswith("rollout-") and filename.endswith(".jsonl")):
                continue
            path = Path(dirpath) / filename
            try:
                st = path.stat()
            except FileNotFoundError:
                continue  # removed while we were scanning
            yield FileStat(path, st.st_mtime_ns, st.st_size, archived)


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
