"""Writing ``config.toml``: edits applied with ``tomlkit``, checked, then swapped in atomically.

Owns ``ConfigWriter``: it applies a list of ``Edit`` (a dotted ``keyPath``, a JSON value,
``replace`` or ``upsert``; ``null`` removes the key) to the user's config file, keeping every
comment, blank line and key order it does not touch; refuses a stale ``expectedVersion``
(``configVersionConflict``) before anything is written; runs the same checks the server runs
at startup on the candidate file (``validate``) and refuses one that would not load
(``configValidationError``); and replaces the file by writing a temporary file beside it,
fsyncing it and renaming it over the old one, with the old file's mode (0600 for a new one).
Versions are ``config.version_of``.

It must never write anywhere but the user's ``config.toml`` (another ``filePath`` is
``configLayerReadonly``), leave a partial file behind, or reload the running server itself:
the caller does that once the write succeeded (``server.config_reload``).
"""

from __future__ import annotations

import contextlib
import copy
import os
import stat
import tempfile
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import tomlkit
from tomlkit.container import Container
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import AoT, Table

from appserver.server.config import ConfigError, LoadedConfig, version_of, with_overrides

MergeStrategy = Literal["replace", "upsert"]

# The ``data`` key of a config write's -32600 error, and its codes (the reference's).
ERROR_CODE_KEY = "config_write_error_code"
VERSION_CONFLICT = "configVersionConflict"
VALIDATION_ERROR = "configValidationError"
LAYER_READONLY = "configLayerReadonly"
NEW_FILE_MODE = 0o600


__all__ = ["ConfigWriteError", "ConfigWriter", "Edit", "WriteResult", "version_of"]


class ConfigWriteError(Exception):
    """A refused write: ``code`` is one of the codes above; nothing was written."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Edit:
    key_path: str
    value: Any  # a JSON value; None removes the key
    merge: MergeStrategy = "replace"


@dataclass(frozen=True)
class WriteResult:
    path: Path
    version: str
    values: dict[str, Any]  # the file's values as written


def split_key_path(key_path: str) -> list[str]:
    """``a.b."c.d"`` → ``["a", "b", "c.d"]``: TOML's dotted-key syntax, quoted parts too."""
    try:
        parsed: Any = tomllib.loads(f"{key_path} = 0")
    except tomllib.TOMLDecodeError:
        raise ConfigWriteError(VALIDATION_ERROR, f"invalid keyPath: {key_path!r}") from None
    parts: list[str] = []
    while isinstance(parsed, dict) and len(parsed) == 1:
        key = next(iter(parsed))
        parts.append(key)
        parsed = parsed[key]
    if parsed != 0 or not parts:
        raise ConfigWriteError(VALIDATION_ERROR, f"invalid keyPath: {key_path!r}")
    return parts


def _toml_value(value: Any, where: str) -> Any:
    """A JSON value as plain Python TOML accepts: ``null`` inside a table drops the key."""
    if isinstance(value, dict):
        return {str(k): _toml_value(v, f"{where}.{k}") for k, v in value.items() if v is not None}
    if isinstance(value, list):
        if any(v is None for v in value):
            raise ConfigWriteError(VALIDATION_ERROR, f"{where}: null is not a TOML value")
        return [_toml_value(v, where) for v in value]
    return value


Node = Container | Table


def _child_table(node: Node, key: str, where: str, *, create: bool) -> Node | None:
    child = node.get(key)
    if child is None:
        if not create:
            return None
        node[key] = tomlkit.table(is_super_table=True)
        child = node[key]
    if isinstance(child, Table):
        return child
    if isinstance(child, dict):  # an inline table: edits go inside it
        return child  # type: ignore[return-value]
    if isinstance(child, AoT):
        raise ConfigWriteError(VALIDATION_ERROR, f"{where} is an array of tables")
    raise ConfigWriteError(VALIDATION_ERROR, f"{where} is not a table")


def _upsert(node: Node, key: str, value: Any, where: str) -> None:
    existing = node.get(key)
    if isinstance(value, dict) and isinstance(existing, dict):
        table = _child_table(node, key, where, create=False)
        assert table is not None
        for k, v in value.items():
            _upsert(table, k, v, f"{where}.{k}")
        return
    node[key] = value


def apply_edit(doc: tomlkit.TOMLDocument, edit: Edit) -> None:
    parts = split_key_path(edit.key_path)
    node: Node = doc
    for i, part in enumerate(parts[:-1]):
        where = ".".join(parts[: i + 1])
        found = _child_table(node, part, where, create=edit.value is not None)
        if found is None:
            return  # removing a key under a table that does not exist: nothing to do
        node = found
    last = parts[-1]
    if edit.value is None:
        if last in node:
            del node[last]
        return
    value = _toml_value(edit.value, edit.key_path)
    if edit.merge == "upsert":
        _upsert(node, last, value, edit.key_path)
    else:
        node[last] = value


Validator = Callable[[LoadedConfig], None]


class ConfigWriter:
    """Writes the user's config file; ``validate`` gets the candidate config (file values
    with the running ``-c`` overrides) and raises ``ConfigError`` for one that would not load."""

    def __init__(self, config: LoadedConfig, validate: Validator) -> None:
        self.home = config.home
        self.path = config.path
        self.overrides = config.overrides
        self.validate = validate

    def _target(self, file_path: str | None) -> Path:
        if file_path is None:
            return self.path
        given = Path(file_path)
        if not given.is_absolute() or _same_file(given, self.path) is False:
            raise ConfigWriteError(
                LAYER_READONLY,
                f"only the user config file {self.path} can be written, not {file_path}",
            )
        return self.path

    def read(self) -> tuple[str, dict[str, Any]]:
        """The file's text and values now ("" and {} when it does not exist)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return "", {}
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigWriteError(VALIDATION_ERROR, f"cannot read {self.path}: {exc}") from None
        try:
            return text, tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigWriteError(
                VALIDATION_ERROR, f"{self.path} is not valid TOML: {exc}"
            ) from None

    def write(
        self,
        edits: Sequence[Edit],
        *,
        expected_version: str | None = None,
        file_path: str | None = None,
    ) -> WriteResult:
        path = self._target(file_path)
        text, current = self.read()
        if expected_version is not None and expected_version != version_of(current):
            raise ConfigWriteError(
                VERSION_CONFLICT,
                "Configuration was modified since last read. Fetch latest version and retry.",
            )
        try:
            doc = tomlkit.parse(text)
            for edit in edits:
                apply_edit(doc, edit)
            new_text = tomlkit.dumps(doc)
            new_values = tomllib.loads(new_text)
        except (TOMLKitError, tomllib.TOMLDecodeError, ValueError, TypeError) as exc:
            raise ConfigWriteError(VALIDATION_ERROR, f"invalid config edit: {exc}") from None
        try:
            self.validate(with_overrides(self.home, path, new_values, self.overrides))
        except ConfigError as exc:
            raise ConfigWriteError(VALIDATION_ERROR, str(exc)) from None
        if new_text != text or not path.exists():
            atomic_write(path, new_text)
        return WriteResult(path, version_of(new_values), copy.deepcopy(new_values))


def _same_file(a: Path, b: Path) -> bool:
    with contextlib.suppress(OSError):
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    return os.path.abspath(a) == os.path.abspath(b)


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``: a temporary file beside it, fsynced, renamed over it,
    with the old file's mode (``NEW_FILE_MODE`` for a new file). Readers see the old file or
    the new one, never a mix; a failure leaves the old file and no temporary one."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
