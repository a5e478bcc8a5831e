"""Where skills are looked up for a working directory, and with which scope.

Owns ``SkillPlaces`` (the server-wide places: the home, the user's home directory, the admin
directory, the project-root markers) and ``roots_for(cwd, ...)``. As Codex does: ``repo`` —
``.agents/skills`` and ``.codex/skills`` in every directory from the project root (the
nearest ancestor holding a marker, ``.git`` by default; the cwd itself when none does) down
to the cwd; ``user`` — ``$APPSERVER_HOME/skills``, ``~/.agents/skills`` and the roots a
client added with ``skills/extraRoots/set``; ``system`` — ``$APPSERVER_HOME/skills/.system``
(the user walk skips it: hidden directories are not scanned); ``admin`` — the admin
directory (``/etc/appserver/skills`` unless ``APPSERVER_ADMIN_DIR`` says otherwise). A
directory listed twice keeps its first scope. This module only computes paths and checks
for markers: it never reads a skill.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from appserver.engine.skills.loader import SkillScope

SKILLS_DIR = "skills"
SYSTEM_DIR = ".system"
REPO_DIRS = (".agents", ".codex")
DEFAULT_MARKERS = (".git",)
DEFAULT_ADMIN_DIR = "/etc/appserver"


@dataclass(frozen=True)
class SkillRoot:
    path: Path
    scope: SkillScope


@dataclass(frozen=True)
class SkillPlaces:
    home: Path  # $APPSERVER_HOME
    user_home: Path | None  # the user's home directory, for ~/.agents/skills
    admin_dir: Path  # its skills/ subdirectory is the admin scope
    markers: tuple[str, ...] = DEFAULT_MARKERS

    @classmethod
    def from_environment(cls, home: Path, markers: Sequence[str] | None = None) -> SkillPlaces:
        try:
            user_home: Path | None = Path.home()
        except RuntimeError:  # no HOME and no passwd entry
            user_home = None
        admin = os.environ.get("APPSERVER_ADMIN_DIR") or DEFAULT_ADMIN_DIR
        found = tuple(markers) if markers is not None else DEFAULT_MARKERS
        return cls(home=home, user_home=user_home, admin_dir=Path(admin), markers=found)


def project_root(cwd: Path, markers: Sequence[str]) -> Path:
    if not markers:
        return cwd
    for directory in (cwd, *cwd.parents):
        if any(os.path.lexists(directory / m) for m in markers):
            return directory
    return cwd


def roots_for(cwd: Path, places: SkillPlaces, extra: Iterable[Path] = ()) -> list[SkillRoot]:
    """Every root to scan for ``cwd`` (absolute), highest precedence first."""
    roots: list[SkillRoot] = []
    top = project_root(cwd, places.markers)
    chain = [cwd, *cwd.parents]
    for directory in chain[: chain.index(top) + 1]:
        roots += [SkillRoot(directory / d / SKILLS_DIR, "repo") for d in REPO_DIRS]
    user = places.home / SKILLS_DIR
    roots.append(SkillRoot(user, "user"))
    if places.user_home is not None:
        roots.append(SkillRoot(places.user_home / ".agents" / SKILLS_DIR, "user"))
    roots += [SkillRoot(p, "user") for p in extra]
    roots.append(SkillRoot(user / SYSTEM_DIR, "system"))
    roots.append(SkillRoot(places.admin_dir / SKILLS_DIR, "admin"))
    seen: set[Path] = set()
    unique: list[SkillRoot] = []
    for root in roots:
        key = _identity(root.path)
        if key not in seen:
            seen.add(key)
            unique.append(root)
    return unique


def _identity(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path
