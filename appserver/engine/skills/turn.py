"""A turn's skills: the list the model sees, and the skills its input names.

Owns ``TurnSkills`` (one snapshot of the cwd's skills taken when the turn starts) and
``TurnSkills.messages_for(input)``: the ``<skill>`` messages for the skills the input names,
each file read whole at that moment (in a worker thread). A skill whose file cannot be read
any more is left out and logged; it never fails the turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from appserver.engine.skills.loader import Skill
from appserver.engine.skills.prompt import (
    available_skills_section,
    mentioned_skills,
    skill_message,
)

log = logging.getLogger("appserver.engine.skills")


@dataclass(frozen=True)
class TurnSkills:
    skills: tuple[Skill, ...]
    section: str | None  # the available-skills block for the instructions

    @classmethod
    def of(cls, skills: Sequence[Skill], context_window: int | None = None) -> TurnSkills:
        return cls(tuple(skills), available_skills_section(skills, context_window))

    async def messages_for(self, inputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        chosen = mentioned_skills(inputs, self.skills)
        if not chosen:
            return []
        return await asyncio.to_thread(_read_all, chosen)


def _read_all(skills: list[Skill]) -> list[dict[str, Any]]:
    out = []
    for skill in skills:
        try:
            contents = skill.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("failed to load skill %s at %s: %s", skill.name, skill.path, exc)
            continue
        out.append(skill_message(skill, contents))
    return out
