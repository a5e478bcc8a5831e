"""What the model sees of skills: the bounded list of available ones, and a used skill's text.

Owns ``available_skills_section`` (the ``<skills_instructions>`` block added to the model
instructions: one ``- name: description (file: path)`` line per skill, in the catalog's
order, then how to use them), ``mentioned_skills`` (the skills a turn's input names: skill
input items by path first, then ``$name`` mentions in the text, ``[$name](path)`` links by
path) and ``skill_message`` (the user-role ``<skill>`` message carrying a skill's whole
``SKILL.md``). As the reference, the list is bounded: 2% of the model's context window
(counted as UTF-8 bytes / 4) or 8,000 characters when the window is unknown. When the full
lines do not fit, descriptions are shortened (the room shared out evenly, short ones keeping
all of theirs); when even bare ``name (file)`` lines do not fit, the skills past the budget
are left out and the section says how many. A plain ``$name`` selects a skill only when one
skill alone has that name; common environment variables (``$PATH``, ``$HOME``…) are never
mentions. This module is pure: no I/O.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appserver.engine.skills.loader import Skill

DEFAULT_CHAR_BUDGET = 8_000
CONTEXT_WINDOW_PERCENT = 2
BYTES_PER_TOKEN = 4

OPEN_TAG = "<skills_instructions>"
CLOSE_TAG = "</skills_instructions>"
_INTRO = (
    "A skill is a set of local instructions kept in a `SKILL.md` file. These are the skills "
    "available in this session, each with its name, description and the path of its file; "
    "open the file for the full instructions when you use a skill."
)
_HOW_TO = """\
- When the user names a skill (`$name` or in plain words), or the task clearly matches a \
skill's description, use that skill for this turn; several named skills mean use them all. \
A skill does not carry over to later turns unless named again.
- Open the skill's `SKILL.md` and read enough of it to follow its workflow. Resolve the \
relative paths it mentions (`scripts/`, `references/`, `assets/`) against the skill's \
directory, load only the files the task needs, and prefer running its scripts to retyping them.
- If a named skill is not listed or its file cannot be read, say so briefly and go on with \
the best alternative."""

_ENV_VARS = {"PATH", "HOME", "USER", "SHELL", "PWD", "TMPDIR", "TEMP", "TMP", "LANG", "TERM"}
_ENV_VARS.add("XDG_CONFIG_HOME")
_NAME = r"[A-Za-z0-9_:-]+"
_LINK_RE = re.compile(r"\[\$(" + _NAME + r")\]\s*\(([^)]*)\)")
_MENTION_RE = re.compile(r"\$(" + _NAME + r")")


# -- the available-skills list -----------------------------------------------------------------
@dataclass(frozen=True)
class Budget:
    limit: int
    tokens: bool  # False: characters

    @classmethod
    def for_window(cls, context_window: int | None) -> Budget:
        if context_window and context_window > 0:
            return cls(max(1, context_window * CONTEXT_WINDOW_PERCENT // 100), tokens=True)
        return cls(DEFAULT_CHAR_BUDGET, tokens=False)

    def cost(self, text: str) -> int:
        if self.tokens:
            return (len(text.encode()) + BYTES_PER_TOKEN - 1) // BYTES_PER_TOKEN
        return len(text)


def _line(skill: Skill, description: str) -> str:
    path = str(skill.path).replace("\\", "/")
    if description:
        return f"- {skill.name}: {description} (file: {path})"
    return f"- {skill.name}: (file: {path})"


def skill_lines(skills: Sequence[Skill], budget: Budget) -> tuple[list[str], int]:
    """The list lines within ``budget``, and how many skills were left out."""
    full = [_line(s, s.description) for s in skills]
    if sum(budget.cost(line + "\n") for line in full) <= budget.limit:
        return full, 0
    bare = [_line(s, "") for s in skills]
    bare_cost = sum(budget.cost(line + "\n") for line in bare)
    if bare_cost <= budget.limit:
        return _shortened(skills, budget, budget.limit - bare_cost), 0
    kept: list[str] = []
    used = 0
    for line in bare:
        cost = budget.cost(line + "\n")
        if used + cost <= budget.limit:
            kept.append(line)
            used += cost
    return kept, len(bare) - len(kept)


def _shortened(skills: Sequence[Skill], budget: Budget, room: int) -> list[str]:
    """Lines whose descriptions share ``room`` (in the budget's unit) evenly."""

    # A description of n characters costs about n + 1 (the space before it) in characters;
    # in tokens, its UTF-8 bytes / 4. Find the largest per-skill cap that fits.
    def extra(desc: str, chars: int) -> int:
        if chars <= 0:
            return 0
        piece = desc[:chars] + " "
        return budget.cost(piece) if budget.tokens else len(piece)

    descs = [s.description for s in skills]
    low, high = 0, max((len(d) for d in descs), default=0)
    while low < high:
        mid = (low + high + 1) // 2
        if sum(extra(d, mid) for d in descs) <= room:
            low = mid
        else:
            high = mid - 1
    return [_line(s, s.description[:low].rstrip()) for s in skills]


def available_skills_section(
    skills: Sequence[Skill], context_window: int | None = None
) -> str | None:
    """The instructions block listing ``skills`` (None when there are none)."""
    if not skills:
        return None
    lines, omitted = skill_lines(skills, Budget.for_window(context_window))
    parts = [OPEN_TAG, "## Skills", _INTRO, "### Available skills", *lines]
    if omitted:
        noun = "skill is" if omitted == 1 else "skills are"
        parts.append(f"({omitted} more {noun} installed but not listed: the list is full.)")
    parts += ["### How to use skills", _HOW_TO, CLOSE_TAG]
    return "\n".join(parts)


# -- mentions and injection --------------------------------------------------------------------
def mentioned_skills(inputs: Sequence[dict[str, Any]], skills: Sequence[Skill]) -> list[Skill]:
    """The skills ``inputs`` (``UserInput`` items) select, each once, in selection order."""
    by_path = {str(s.path): s for s in skills}
    counts: dict[str, int] = {}
    for s in skills:
        counts[s.name] = counts.get(s.name, 0) + 1
    selected: dict[Path, Skill] = {}
    blocked: set[str] = set()
    for item in inputs:
        if item.get("type") == "skill":
            blocked.add(str(item.get("name")))
            skill = by_path.get(_normal_path(str(item.get("path", ""))))
            if skill is not None:
                selected.setdefault(skill.path, skill)
    for item in inputs:
        if item.get("type") != "text":
            continue
        text = str(item.get("text", ""))
        for name, target in _LINK_RE.findall(text):
            skill = by_path.get(_normal_path(target.strip()))
            if skill is not None and name.upper() not in _ENV_VARS:
                selected.setdefault(skill.path, skill)
        names = {n for n in _MENTION_RE.findall(text) if n.upper() not in _ENV_VARS}
        for skill in skills:
            name = skill.name
            if name in names and name not in blocked and counts[name] == 1:
                selected.setdefault(skill.path, skill)
    return list(selected.values())


def _normal_path(path: str) -> str:
    path = path.removeprefix("skill://")
    return os.path.normpath(path) if path else ""


def skill_message(skill: Skill, contents: str) -> dict[str, Any]:
    """The user-role model message that carries a used skill's whole file."""
    text = f"<skill>\n<name>{skill.name}</name>\n<path>{skill.path}</path>\n{contents}\n</skill>"
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
