"""The skills of a working directory: scanned from disk, cached, and compared with last time.

Owns ``SkillSet`` (one cwd's skills and errors, its ``SkillsListEntry`` wire view) and
``SkillsCatalog``: the extra roots clients set, a cache of parsed ``SKILL.md`` files keyed by
their stat stamp (inode, size, mtime and ctime in nanoseconds, and the same for the
``agents/openai.yaml`` beside it), and the set last seen per cwd. A scan walks the roots
(stat calls only: breadth first, at most 6 levels and 2000 directories per root, hidden
entries skipped, symlinked directories followed except in the system root) and reads only
the files whose stamp changed, so the repeated ``skills/list`` calls a client makes are
cheap; ``force`` re-reads every file. ``scan`` also says whether the set differs from the
one last seen for that cwd (the 256 most recently scanned are remembered): the caller sends
``skills/changed`` then. A scan never raises
for what it finds on disk (a bad file is a ``SkillError`` of its set; an unreadable
directory is skipped and logged). Scans hold one lock: call them from a worker thread.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from appserver.engine.skills.loader import SKILL_FILE, Skill, SkillError, read_skill
from appserver.engine.skills.roots import SkillPlaces, SkillRoot, roots_for

log = logging.getLogger("appserver.engine.skills")

MAX_SCAN_DEPTH = 6
MAX_REMEMBERED_CWDS = 256  # the sets kept for change detection (oldest forgotten first)
MAX_DIRS_PER_ROOT = 2000
_SCOPE_RANK = {"repo": 0, "user": 1, "system": 2, "admin": 3}

_Stamp = tuple[tuple[int, int, int, int] | None, ...]


@dataclass(frozen=True)
class SkillSet:
    skills: tuple[Skill, ...] = ()
    errors: tuple[SkillError, ...] = ()

    def wire(self, cwd: str) -> dict[str, Any]:
        return {
            "cwd": cwd,
            "skills": [s.wire() for s in self.skills],
            "errors": [e.wire() for e in self.errors],
        }


class SkillsCatalog:
    def __init__(self, places: SkillPlaces) -> None:
        self.places = places
        self._extra: tuple[Path, ...] = ()
        self._files: dict[tuple[Path, str], tuple[_Stamp, Skill | SkillError]] = {}
        self._last: dict[Path, SkillSet] = {}
        self._lock = threading.Lock()
        self.files_read = 0  # SKILL.md files parsed so far (the cache's effect, observable)
        # Skills the user config disables (``[[skills.config]]`` with ``enabled = false``),
        # by SKILL.md path or by name; listed with ``enabled: false`` and not offered to turns.
        self._disabled_paths: frozenset[Path] = frozenset()
        self._disabled_names: frozenset[str] = frozenset()

    @property
    def extra_roots(self) -> tuple[Path, ...]:
        return self._extra

    def set_extra_roots(self, roots: Sequence[Path]) -> bool:
        """Replace the extra user roots; True when they changed."""
        new = tuple(dict.fromkeys(roots))
        with self._lock:
            changed, self._extra = new != self._extra, new
        return changed

    def set_disabled(self, paths: Sequence[Path], names: Sequence[str]) -> bool:
        """Replace the disabled skills; True when they changed (rescan the known cwds then)."""
        new = (frozenset(paths), frozenset(names))
        with self._lock:
            changed = new != (self._disabled_paths, self._disabled_names)
            self._disabled_paths, self._disabled_names = new
        return changed

    def scan(self, cwd: Path, *, force: bool = False) -> tuple[SkillSet, bool]:
        """The skills for ``cwd`` (absolute), and whether they differ from the last scan's."""
        with self._lock:
            found = self._scan(roots_for(cwd, self.places, self._extra), force)
            previous = self._last.pop(cwd, None)
            self._last[cwd] = found
            while len(self._last) > MAX_REMEMBERED_CWDS:
                del self._last[next(iter(self._last))]
        return found, previous is not None and previous != found

    def rescan_known(self) -> bool:
        """Scan again every cwd scanned before; True when any of their sets changed."""
        with self._lock:
            known = list(self._last)
        return any([self.scan(cwd)[1] for cwd in known])

    # -- scanning ---------------------------------------------------------------------------
    def _scan(self, roots: list[SkillRoot], force: bool) -> SkillSet:
        skills: dict[Path, Skill] = {}
        errors: dict[Path, SkillError] = {}
        for root in roots:
            for path in _skill_files(root):
                result = self._parsed(path, root, force)
                if isinstance(result, Skill):
                    skills.setdefault(path, result)
                elif root.scope != "system":
                    errors.setdefault(path, result)
        ordered = sorted(skills.values(), key=lambda s: (_SCOPE_RANK[s.scope], s.name, s.path))
        if self._disabled_paths or self._disabled_names:
            ordered = [
                replace(s, enabled=False)
                if s.path in self._disabled_paths or s.name in self._disabled_names
                else s
                for s in ordered
            ]
        return SkillSet(tuple(ordered), tuple(errors[p] for p in sorted(errors)))

    def _parsed(self, path: Path, root: SkillRoot, force: bool) -> Skill | SkillError:
        stamp = (_stat(path), _stat(path.parent / "agents" / "openai.yaml"))
        key = (path, root.scope)
        cached = self._files.get(key)
        if not force and cached is not None and cached[0] == stamp:
            return cached[1]
        result = read_skill(path, root.scope)
        self.files_read += 1
        self._files[key] = (stamp, result)
        return result


def _stat(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _skill_files(root: SkillRoot) -> list[Path]:
    """The ``SKILL.md`` files under ``root`` (resolved paths), breadth first."""
    try:
        top = root.path.resolve()
    except OSError:
        return []
    if not top.is_dir():
        return []
    follow_links = root.scope != "system"
    found: list[Path] = []
    visited = {top}
    queue: deque[tuple[Path, int]] = deque([(top, 0)])
    while queue:
        directory, depth = queue.popleft()
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            log.warning("cannot read skills directory %s: %s", directory, exc)
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_symlink():
                    if not (follow_links and entry.is_dir()):
                        continue
                elif entry.is_file():
                    if entry.name == SKILL_FILE:
                        found.append(directory / entry.name)
                    continue
                elif not entry.is_dir():
                    continue
                child = Path(entry.path).resolve()
            except OSError:
                continue
            if depth + 1 > MAX_SCAN_DEPTH or child in visited:
                continue
            if len(visited) >= MAX_DIRS_PER_ROOT:
                log.warning("skills scan of %s stopped after %d directories", top, len(visited))
                return found
            visited.add(child)
            queue.append((child, depth + 1))
    return found
