"""A thread's ``config`` map (``thread/start``, ``thread/resume``, ``thread/fork``): the
overrides a client sends for one thread, and the tool switches they decide.

Owns reading the map the way Codex reads it: each key is a dotted path into config.toml
(``"features.shell_tool": false``) or a nested table (``{"features": {"shell_tool": false}}``),
applied in order into one nested table; and ``ToolSwitches``, which tools a thread's model
requests offer. The keys acted on here, and their types:

- ``features.shell_tool`` (bool): false removes the shell tool;
- ``tools.update_plan.enabled`` (bool): false removes ``update_plan`` (``tools.update_plan``
  must be a table, as in Codex);
- ``web_search`` (``"disabled"``, ``"cached"``, ``"live"``) and every other ``features.*``
  key (bool): checked, nothing else (there is no web search or feature of that name here);
- the thread's ``environments`` (not part of the map): an empty list means the thread has no
  execution environment, which removes every tool that touches the workspace (shell and
  ``apply_patch``), as in Codex.

A value of the wrong type for one of these is the client's error (-32600 naming the key; Codex
answers a bare -32600). Every other key is accepted and ignored, as Codex ignores keys its
config does not know (unknown ``features`` keys it only logs): a debug log line names them.
``mcp_servers`` is accepted and ignored (per-thread MCP servers are not implemented; a
non-empty table is logged as a warning). Like Codex, the switches are not written to the
rollout: a thread resumed from disk gets the ``config`` of its resume request.

It must never do I/O or decide anything about a tool call itself: ``tool_calls`` refuses a call
to a tool the switches removed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from appserver.engine.errors import EngineError

log = logging.getLogger("appserver.engine")

WEB_SEARCH_MODES = ("disabled", "cached", "live")
# Keys read here (or by the thread handlers: model, provider, policies); the rest are ignored.
_READ_KEYS = frozenset(
    {
        "features",
        "tools",
        "web_search",
        "mcp_servers",
        "model",
        "model_provider",
        "approval_policy",
        "sandbox_mode",
        "model_reasoning_effort",
        "model_reasoning_summary",
    }
)


@dataclass(frozen=True)
class ToolSwitches:
    """Which of our tools a thread's model requests offer."""

    shell: bool = True
    apply_patch: bool = True
    update_plan: bool = True


def merge_overrides(config: Mapping[str, Any]) -> dict[str, Any]:
    """The map as one nested table: dotted keys split into paths, tables merged key by key,
    later entries winning (a path through a non-table replaces it, as Codex's ``-c`` does)."""
    root: dict[str, Any] = {}
    for key, value in config.items():
        parts = [p for p in str(key).split(".")]
        if not all(parts):
            raise EngineError(f"Invalid request: config key `{key}` has an empty part")
        _set_path(root, parts, value)
    return root


def _set_path(table: dict[str, Any], parts: list[str], value: Any) -> None:
    for part in parts[:-1]:
        inner = table.get(part)
        if not isinstance(inner, dict):
            inner = {}
            table[part] = inner
        table = inner
    last = parts[-1]
    if isinstance(value, Mapping):
        inner = table.get(last)
        if not isinstance(inner, dict):
            inner = {}
            table[last] = inner
        for k, v in value.items():
            _set_path(inner, [str(k)], v)
    else:
        table[last] = value


_MISSING = object()


def _lookup(table: Mapping[str, Any], *path: str) -> Any:
    node: Any = table
    for part in path:
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _bool(table: Mapping[str, Any], *path: str) -> bool | None:
    value = _lookup(table, *path)
    if value is _MISSING or value is None:
        return None
    if not isinstance(value, bool):
        raise EngineError(f"Invalid request: config.{'.'.join(path)}: expected a boolean")
    return value


def tool_switches(table: Mapping[str, Any], environments: list[Any] | None = None) -> ToolSwitches:
    """The switches ``table`` (from ``merge_overrides``) and ``environments`` decide; raises
    -32600 for a value of the wrong type."""
    features = _lookup(table, "features")
    if features is not _MISSING and features is not None:
        if not isinstance(features, Mapping):
            raise EngineError("Invalid request: config.features: expected a table")
        for name in features:
            if not isinstance(features[name], bool | Mapping):
                raise EngineError(f"Invalid request: config.features.{name}: expected a boolean")
    update_plan = _lookup(table, "tools", "update_plan")
    if update_plan is not _MISSING and not isinstance(update_plan, Mapping):
        raise EngineError(
            "Invalid request: config.tools.update_plan: expected a table such as "
            "`{enabled = false}`"
        )
    web_search = _lookup(table, "web_search")
    if web_search is not _MISSING and web_search not in WEB_SEARCH_MODES:
        raise EngineError(
            "Invalid request: config.web_search: expected one of "
            + ", ".join(f"`{m}`" for m in WEB_SEARCH_MODES)
        )
    mcp = _lookup(table, "mcp_servers")
    if isinstance(mcp, Mapping) and mcp:
        log.warning("per-thread mcp_servers are not supported; ignored: %s", ", ".join(mcp))
    ignored = sorted(k for k in table if k not in _READ_KEYS)
    if ignored:
        log.debug("thread config keys ignored: %s", ", ".join(ignored))
    has_environment = environments is None or len(environments) > 0
    shell = _bool(table, "features", "shell_tool")
    plan = _bool(table, "tools", "update_plan", "enabled")
    return ToolSwitches(
        shell=has_environment and shell is not False,
        apply_patch=has_environment,
        update_plan=plan is not False,
    )
