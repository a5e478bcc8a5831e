"""One ``SKILL.md``: its YAML front matter, checked, and its optional ``agents/openai.yaml``.

Owns ``Skill`` (what a discovered skill is, and its ``SkillMetadata`` wire view),
``SkillError`` (a file that is not a valid skill, as ``skills/list`` reports it) and
``read_skill``. The format is Codex's: the file starts with a ``---`` line, the front matter
ends at the next ``---`` line, and holds ``name`` (defaults to the skill's directory name),
``description`` (required) and optionally ``metadata.short-description``; whitespace runs in
each collapse to one space; name at most 64 characters, descriptions at most 1024. An
``agents/openai.yaml`` next to it may give the ``interface`` a client shows (display name,
icons under ``assets/``, colour, default prompt); a bad one is ignored, never fatal. The YAML
is read with PyYAML's safe loader, imported on first use (serving starts without it). This
module must never raise for a bad file: every problem becomes a ``SkillError`` with the
reference's message wording.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

log = logging.getLogger("appserver.engine.skills")

SkillScope = Literal["repo", "user", "system", "admin"]

SKILL_FILE = "SKILL.md"
MAX_NAME_LEN = 64
MAX_DESCRIPTION_LEN = 1024
MAX_SHORT_DESCRIPTION_LEN = 1024
_INTERFACE_FILE = ("agents", "openai.yaml")


@dataclass(frozen=True)
class Skill:
    name: str
    description: str
    short_description: str | None
    path: Path  # the SKILL.md, resolved
    scope: SkillScope
    interface: dict[str, Any] | None = None
    enabled: bool = True  # false when the user config's ``[[skills.config]]`` disables it

    def wire(self) -> dict[str, Any]:
        """``SkillMetadata`` as the reference sends it (``shortDescription`` and
        ``interface`` only when the files give them)."""
        out: dict[str, Any] = {"name": self.name, "description": self.description}
        if self.short_description is not None:
            out["shortDescription"] = self.short_description
        if self.interface is not None:
            out["interface"] = self.interface
        out.update(path=str(self.path), scope=self.scope, enabled=self.enabled, pluginId=None)
        return out


@dataclass(frozen=True)
class SkillError:
    path: Path
    message: str

    def wire(self) -> dict[str, Any]:
        return {"path": str(self.path), "message": self.message}


class _Invalid(Exception):
    pass


def read_skill(path: Path, scope: SkillScope) -> Skill | SkillError:
    """Read and check the ``SKILL.md`` at ``path`` (already resolved)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return SkillError(path, f"failed to read file: {exc}")
    try:
        return _parse(path, scope, text)
    except _Invalid as exc:
        return SkillError(path, str(exc))


def front_matter(text: str) -> str | None:
    """The lines between the opening and the closing ``---``, or None when there are none."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        return None
    for end in range(1, len(lines)):
        if lines[end].strip() == "---":
            return "\n".join(lines[1:end]) if end > 1 else None
    return None


def single_line(value: str) -> str:
    return " ".join(value.split())


def _parse(path: Path, scope: SkillScope, text: str) -> Skill:
    import yaml  # only when a skill is read: startup stays free of it

    raw = front_matter(text)
    if raw is None:
        raise _Invalid("missing YAML frontmatter delimited by ---")
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise _Invalid(f"invalid YAML: {single_line(str(exc))}") from None
    if not isinstance(data, dict):
        raise _Invalid("invalid YAML: the front matter must be a mapping")
    name = _optional_str(data, "name") or ""
    name = single_line(name) or single_line(path.parent.name) or "skill"
    description = single_line(_optional_str(data, "description") or "")
    metadata = data.get("metadata")
    short = None
    if isinstance(metadata, dict):
        short = _optional_str(metadata, "short-description", "metadata.")
        short = single_line(short) if short is not None else None
    _check_len(name, MAX_NAME_LEN, "name")
    _check_len(description, MAX_DESCRIPTION_LEN, "description")
    if short:
        _check_len(short, MAX_SHORT_DESCRIPTION_LEN, "metadata.short-description")
    return Skill(
        name=name,
        description=description,
        short_description=short or None,
        path=path,
        scope=scope,
        interface=_interface(path.parent),
    )


def _optional_str(data: dict[Any, Any], key: str, prefix: str = "") -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"invalid YAML: `{prefix}{key}` must be a string")
    return value


def _check_len(value: str, limit: int, field: str) -> None:
    if not value:
        raise _Invalid(f"missing field `{field}`")
    if len(value) > limit:
        raise _Invalid(f"invalid {field}: exceeds maximum length of {limit} characters")


# -- agents/openai.yaml -------------------------------------------------------------------------
def _interface(skill_dir: Path) -> dict[str, Any] | None:
    """The ``SkillInterface`` from ``agents/openai.yaml``, or None (absent, unreadable or
    invalid: optional metadata never blocks the skill)."""
    import yaml

    file = skill_dir.joinpath(*_INTERFACE_FILE)
    if not file.is_file():
        return None
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        log.warning("ignoring %s: %s", file, single_line(str(exc)))
        return None
    raw = data.get("interface") if isinstance(data, dict) else None
    if not isinstance(raw, dict):
        return None
    out: dict[str, Any] = {
        "displayName": _text(raw, "display_name", MAX_NAME_LEN),
        "shortDescription": _text(raw, "short_description", MAX_SHORT_DESCRIPTION_LEN),
        "iconSmall": _asset(skill_dir, raw.get("icon_small")),
        "iconLarge": _asset(skill_dir, raw.get("icon_large")),
        "iconSmallUrl": None,
        "iconLargeUrl": None,
        "brandColor": _colour(raw.get("brand_color")),
        "defaultPrompt": _text(raw, "default_prompt", MAX_DESCRIPTION_LEN),
    }
    return out if any(v is not None for v in out.values()) else None


def _text(raw: dict[Any, Any], key: str, limit: int) -> str | None:
    value = raw.get(key)
    if not isinstance(value, str):
        return None
    value = single_line(value)
    return value if value and len(value) <= limit else None


def _asset(skill_dir: Path, value: Any) -> str | None:
    """An icon path: relative, inside the skill's ``assets/`` directory, else ignored."""
    if not isinstance(value, str) or not value:
        return None
    rel = PurePosixPath(value)
    parts = [p for p in rel.parts if p != "."]
    if rel.is_absolute() or ".." in parts or not parts or parts[0] != "assets":
        return None
    return str(skill_dir.joinpath(*parts))


def _colour(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    hex_digits = value[1:]
    ok = value.startswith("#") and len(hex_digits) == 6
    return value if ok and all(c in "0123456789abcdefABCDEF" for c in hex_digits) else None
