"""Configuration: ``$APPSERVER_HOME/config.toml`` plus ``-c key=value`` overrides.

Owns loading, the dotted-key overrides (values parsed as TOML, falling back to a plain string
as Codex does), the home directory, and ``ConfigError``: a malformed file is reported with its
path and line, never as a traceback. Key names are Codex's where they exist (``model``,
``model_provider``, ``approval_policy``, ``sandbox_mode``, ``[model_providers.NAME]``). This
module must never read secrets out of the environment into the config it returns (API keys
stay in the environment; only the *name* of the variable is config).
"""

from __future__ import annotations

import copy
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

CONFIG_FILE = "config.toml"


class ConfigError(Exception):
    """A configuration problem to show the user as one clear line."""


def default_home() -> Path:
    env = os.environ.get("APPSERVER_HOME")
    return Path(env).expanduser() if env else Path.home() / ".appserver"


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` → (["a","b"], value); the value is TOML when it parses, else a string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"invalid -c override {text!r}: expected key=value")
    parts = [p.strip() for p in key.split(".")]
    if any(not p for p in parts):
        raise ConfigError(f"invalid -c override key {key!r}")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts, value


def _set_dotted(target: dict[str, Any], parts: list[str], value: Any) -> None:
    node = target
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def version_of(values: dict[str, Any]) -> str:
    """A config layer's version as the reference computes it: ``sha256:`` and the hex
    SHA-256 of the layer's values as compact JSON with sorted keys."""
    data = orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)
    return "sha256:" + hashlib.sha256(data).hexdigest()


_LINE_RE = re.compile(r"at line (\d+), column (\d+)")


def _load_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _LINE_RE.search(str(exc))
        where = f"{path}:{match.group(1)}:{match.group(2)}" if match else str(path)
        reason = _LINE_RE.sub("", str(exc)).strip(" ()")
        raise ConfigError(f"malformed config {where}: {reason}") from None


@dataclass
class LoadedConfig:
    home: Path
    path: Path
    values: dict[str, Any]
    origins: dict[str, str] = field(default_factory=dict)  # dotted key → "user" | "override"
    # The ``-c`` overrides as given (re-applied when the file is reloaded after a write) and
    # the file's own values, before them (what ``config/read`` versions the user layer by).
    overrides: tuple[str, ...] = ()
    file_values: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, default: Any = None) -> Any:
        node: Any = self.values
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def snapshot(self) -> dict[str, Any]:
        return copy.deepcopy(self.values)


def _leaf_keys(values: dict[str, Any], prefix: str = "") -> list[str]:
    keys: list[str] = []
    for k, v in values.items():
        dotted = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            keys.extend(_leaf_keys(v, dotted + "."))
        else:
            keys.append(dotted)
    return keys


_KNOWN_TYPES: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "model_provider": str,
    "approval_policy": (str, dict),
    "sandbox_mode": str,
    "model_providers": dict,
    "model_reasoning_effort": str,
    "model_reasoning_summary": str,
    "thread_idle_unload_seconds": (int, float),
    "model_context_window": int,
}

_ENUMS = {
    "approval_policy": {"untrusted", "on-failure", "on-request", "never"},
    "sandbox_mode": {"read-only", "workspace-write", "danger-full-access"},
}


def _check(values: dict[str, Any], path: Path) -> None:
    for key, kind in _KNOWN_TYPES.items():
        if key in values and not isinstance(values[key], kind):
            raise ConfigError(f"invalid config {path}: `{key}` has the wrong type")
    for key, allowed in _ENUMS.items():
        value = values.get(key)
        if isinstance(value, str) and value not in allowed:
            choices = ", ".join(sorted(allowed))
            raise ConfigError(
                f"invalid config {path}: `{key}` = {value!r}; expected one of {choices}"
            )
    providers = values.get("model_providers", {})
    for name, prov in providers.items():
        if not isinstance(prov, dict):
            raise ConfigError(f"invalid config {path}: [model_providers.{name}] must be a table")


def load_config(home: Path, overrides: list[str] | tuple[str, ...] = ()) -> LoadedConfig:
    path = home / CONFIG_FILE
    return with_overrides(home, path, _load_file(path), overrides)


def with_overrides(
    home: Path, path: Path, file_values: dict[str, Any], overrides: list[str] | tuple[str, ...]
) -> LoadedConfig:
    """The config the server runs with: ``file_values`` (config.toml as parsed) with the
    ``-c`` overrides on top, checked as at startup (``ConfigError`` if it would not load)."""
    values = copy.deepcopy(file_values)
    origins = dict.fromkeys(_leaf_keys(values), "user")
    for text in overrides:
        parts, value = parse_override(text)
        _set_dotted(values, parts, value)
        origins[".".join(parts)] = "override"
    _check(values, path)
    return LoadedConfig(
        home=home,
        path=path,
        values=values,
        origins=origins,
        overrides=tuple(overrides),
        file_values=copy.deepcopy(file_values),
    )
