"""What a command is about, for display: v2 ``commandActions`` (read, listFiles, search).

Reads the command with :mod:`bash_parse`, the same parser the approval decisions use, so
the display never describes a different command than the one judged. A command the parser
cannot prove plain is a single ``{"type": "unknown"}``.

It must never be used to decide whether a command may run (that is
:mod:`command_safety`'s), and never raise.
"""

from __future__ import annotations

import os
from typing import Any

from appserver.engine.tools import bash_parse

__all__ = ["command_actions"]

_MAX_NESTING = 4
_READERS = {"cat", "head", "tail", "less", "more", "nl", "bat"}
_READER_VALUE_FLAGS = {"-n", "-c", "--lines", "--bytes", "-b", "-s", "-v", "-w"}
_GREP_VALUE_FLAGS = {"-e", "-f", "-m", "-A", "-B", "-C", "--max-count", "--regexp", "--file"}
_RG_VALUE_FLAGS = _GREP_VALUE_FLAGS | {"-g", "--glob", "-t", "--type", "-T", "--type-not", "-j"}
_PIPE_FILTERS = {"head", "tail", "wc", "sort", "uniq", "cut", "tr", "nl", "cat", "less", "more"}


def _is_sed_print(arg: str) -> bool:
    body = arg[:-1] if arg.endswith("p") else ""
    return bool(body) and all(part.isdigit() and part.isascii() for part in body.split(",", 1))


def _search(name: str, args: list[str], text: str) -> dict[str, Any]:
    if name == "rg" and "--files" in args:
        paths = bash_parse.operands(args, _RG_VALUE_FLAGS)
        return {"type": "listFiles", "command": text, "path": paths[0] if paths else None}
    query: str | None = None
    for i, arg in enumerate(args[:-1]):
        if arg in ("-e", "--regexp"):
            query = args[i + 1]
            break
    rest = bash_parse.operands(args, _RG_VALUE_FLAGS if name == "rg" else _GREP_VALUE_FLAGS)
    if query is None and rest:
        query, rest = rest[0], rest[1:]
    return {"type": "search", "command": text, "query": query, "path": rest[0] if rest else None}


def _find(args: list[str], text: str) -> dict[str, Any]:
    paths = []
    for arg in args:
        if arg.startswith(("-", "(", "!")):
            break
        paths.append(arg)
    pattern = None
    for i, arg in enumerate(args[:-1]):
        if arg in ("-name", "-iname", "-path", "-ipath"):
            pattern = args[i + 1]
    return {
        "type": "search",
        "command": text,
        "query": pattern,
        "path": paths[0] if paths else None,
    }


def _action_for(words: list[str], text: str, after_pipe: bool) -> dict[str, Any] | None:
    """The action of one simple command; None means "adds nothing" (e.g. ``| head``)."""
    name = os.path.basename(words[0])
    args = words[1:]
    unknown = {"type": "unknown", "command": text}
    if name == "cd":
        return None
    if name in _READERS:
        files = bash_parse.operands(args, _READER_VALUE_FLAGS)
        if not files:
            return None if after_pipe else unknown
        if len(files) == 1:
            path = files[0]
            return {"type": "read", "command": text, "name": os.path.basename(path), "path": path}
        return unknown
    if after_pipe and name in _PIPE_FILTERS:
        return None
    if name == "sed" and len(args) == 3 and args[0] == "-n" and _is_sed_print(args[1]):
        path = args[2]
        return {"type": "read", "command": text, "name": os.path.basename(path), "path": path}
    if name in ("ls", "tree"):
        paths = bash_parse.operands(args, {"-I", "-L", "--ignore", "--hide"})
        return {"type": "listFiles", "command": text, "path": paths[0] if paths else None}
    if name in ("grep", "rg", "egrep", "fgrep", "ag"):
        return _search(name, args, text)
    if name == "find":
        return _find(args, text)
    return unknown


def _actions(command: str, depth: int) -> list[dict[str, Any]] | None:
    script = bash_parse.parse(command)
    if script is None:
        return None
    if len(script.commands) == 1 and depth < _MAX_NESTING:
        inner = bash_parse.shell_script_of([w.text for w in script.commands[0].words])
        if inner is not None:
            return _actions(inner, depth + 1)
    actions: list[dict[str, Any]] = []
    for index, cmd in enumerate(script.commands):
        after_pipe = index > 0 and script.operators[index - 1] == "|"
        # Display only: a glob such as `*.py` is shown as written.
        action = _action_for([w.text for w in cmd.words], cmd.source, after_pipe)
        if action is None:
            continue
        if action["type"] == "unknown":
            return None
        if not actions or actions[-1] != action:
            actions.append(action)
    return actions or None


def command_actions(command: str) -> list[dict[str, Any]]:
    """Parsed intents of a display command for v2 ``commandActions``. Never raises.

    Sequences (``&&``, ``;``, ``|``) give one action per meaningful part; ``cd`` and output
    filters after a pipe (``| head``) are dropped. If any part is not understood, the whole
    command is a single ``{"type": "unknown"}``, as a partial reading would mislead. Each
    action's ``command`` is its part's text in the script.
    """
    unknown = [{"type": "unknown", "command": command}]
    try:
        actions = _actions(command, 0)
    except Exception:  # a display helper must never break a turn
        return unknown
    return actions or unknown
