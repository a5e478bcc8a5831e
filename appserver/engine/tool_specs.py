"""The tools offered to the model, as Responses-API function specs.

Owns the names and JSON schemas of ``shell_command``, ``apply_patch`` and ``update_plan``, and
which of them a thread offers (``tools_for``, from its ``ToolSwitches``). Specs only: running
them is ``tool_calls``' job.
"""

from __future__ import annotations

from typing import Any

from appserver.engine.thread_config import ToolSwitches

SHELL = "shell_command"
APPLY_PATCH = "apply_patch"
UPDATE_PLAN = "update_plan"

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": SHELL,
        "description": "Run a shell command and return its exit code and output.",
        "parameters": {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command line to run."},
                "workdir": {"type": "string", "description": "Working directory."},
                "timeout_ms": {"type": "integer", "description": "Timeout in milliseconds."},
            },
            "required": ["command"],
            "additionalProperties": False,
        },
    },
    {
        "type": "function",
        "name": APPLY_PATCH,
        "description": (
            "Edit files with a patch in the apply_patch format: '*** Begin Patch', then "
            "'*** Add File: path', '*** Delete File: path' or '*** Update File: path' "
            "sections with +/-/space lines, then '*** End Patch'."
        ),
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string", "description": "The whole patch."}},
            "required": ["input"],
            "additionalProperties": False,
        },
    },
    {
        "type": "function",
        "name": UPDATE_PLAN,
        "description": "Update the task plan shown to the user.",
        "parameters": {
            "type": "object",
            "properties": {
                "explanation": {"type": "string"},
                "plan": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "step": {"type": "string"},
                            "status": {
                                "type": "string",
                                "enum": ["pending", "in_progress", "completed"],
                            },
                        },
                        "required": ["step", "status"],
                    },
                },
            },
            "required": ["plan"],
            "additionalProperties": False,
        },
    },
]


def enabled_names(switches: ToolSwitches) -> frozenset[str]:
    """The tools a thread with these switches offers (and may run)."""
    names = set()
    if switches.shell:
        names.add(SHELL)
    if switches.apply_patch:
        names.add(APPLY_PATCH)
    if switches.update_plan:
        names.add(UPDATE_PLAN)
    return frozenset(names)


def tools_for(switches: ToolSwitches) -> list[dict[str, Any]]:
    """The tool specs of a model request for a thread with these switches."""
    names = enabled_names(switches)
    return [tool for tool in TOOLS if tool["name"] in names]
