"""The tools offered to the model, as Responses-API function specs.

Owns the names and JSON schemas of ``shell_command``, ``apply_patch`` and ``update_plan``.
Specs only: running them is ``tool_calls``' job.
"""

from __future__ import annotations

from typing import Any

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
