"""Collaboration modes (Codex's Plan and Default): the presets clients list, the instructions
each mode gives the model, and when the model history must say that the mode changed.

Owns ``PRESETS`` (what ``collaborationMode/list`` answers), the Plan-mode text (this
project's own wording, in the spirit of Codex's conversational plan mode: explore, ask, then
present a decision-complete plan, change nothing), and ``mode_switch``: the developer message
``<collaboration_mode>…</collaboration_mode>`` a turn adds to the history when the mode's
instructions differ from the ones the history last carried. The history itself is the state:
nothing is stored beside it, so a resumed thread keeps its mode, and a turn in the mode the
history already has adds nothing. The tool set is the same in every mode. Pure functions; it
must never touch I/O.
"""

from __future__ import annotations

from typing import Any

OPEN_TAG = "<collaboration_mode>"
CLOSE_TAG = "</collaboration_mode>"

# As the reference lists them (note the schema's snake_case ``reasoning_effort``).
PRESETS: list[dict[str, Any]] = [
    {"name": "Plan", "mode": "plan", "model": None, "reasoning_effort": "medium"},
    {"name": "Default", "mode": "default", "model": None, "reasoning_effort": None},
]

PLAN_INSTRUCTIONS = """# Plan Mode (Conversational)

You are in Plan mode until a later developer message says otherwise. The user asking you to \
do the work does not end Plan mode: while it lasts, you plan the work and do not perform it.

## How to work
1. Ground the plan in facts. Read the relevant files and run commands that only look \
(listing, searching, reading, running the existing tests) to learn how things are now. Do \
not edit files, apply patches or run anything that changes the workspace or the system.
2. Talk it through. When a choice matters and you cannot settle it by looking, ask the user \
one short, concrete question at a time, and propose the answer you would pick so they can \
simply agree. Never ask what you can find out yourself.
3. Present the plan. Once nothing important is open, write one complete plan: the goal, \
the changes file by file, the order of the steps, how the result will be tested, and the \
risks. It must be decision-complete: someone else could carry it out without choosing \
anything further.

## Rules
- If asked to make a change now, explain that Plan mode only plans, and fold the request \
into the plan.
- Say plainly what is still undecided rather than presenting a partial plan as final.
- Keep the conversation short and concrete; prefer a proposal over an open question.
"""

DEFAULT_INSTRUCTIONS = """# Default Mode

You are in Default mode. Instructions given earlier for another collaboration mode (such as \
Plan mode) no longer apply. Carry out the user's requests directly with the tools you have, \
and ask a question only when you cannot reasonably go on without the answer.
"""


def instructions_for(mode: str, given: str | None) -> str | None:
    """The instructions a mode runs with: the client's own when it sends some, else the
    built-in text (Plan has one; Default adds nothing to a thread that never left it)."""
    if given:
        return given
    return PLAN_INSTRUCTIONS if mode == "plan" else None


def _text(item: dict[str, Any]) -> str | None:
    if item.get("type") != "message" or item.get("role") != "developer":
        return None
    content = item.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [c.get("text") for c in content if isinstance(c, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return None


def active_instructions(history: list[dict[str, Any]]) -> str | None:
    """The mode instructions the history last gave the model, or None if it never did."""
    for item in reversed(history):
        text = _text(item)
        if text is not None and text.startswith(OPEN_TAG) and text.endswith(CLOSE_TAG):
            return text[len(OPEN_TAG) : -len(CLOSE_TAG)]
    return None


def developer_message(instructions: str) -> dict[str, Any]:
    text = f"{OPEN_TAG}{instructions}{CLOSE_TAG}"
    content = [{"type": "input_text", "text": text}]
    return {"type": "message", "role": "developer", "content": content}


def mode_switch(
    history: list[dict[str, Any]], mode: str, given: str | None
) -> dict[str, Any] | None:
    """The developer message a turn in ``mode`` must add to ``history``, or None when the
    history already carries that mode's instructions. Leaving a mode that had instructions
    for Default without any says so explicitly (the earlier text would otherwise still
    stand in the history)."""
    wanted = instructions_for(mode, given)
    active = active_instructions(history)
    if wanted is None:
        if active is None or active == DEFAULT_INSTRUCTIONS:
            return None
        wanted = DEFAULT_INSTRUCTIONS
    if wanted == active:
        return None
    return developer_message(wanted)
