"""The config writer on real files, without a server: key paths as TOML spells them, a new
file created 0600, a failed rename leaving the old file and no temporary file behind, and a
stale version refused before anything is touched."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appserver.server.config import ConfigError, LoadedConfig, load_config, version_of
from appserver.server.config_write import (
    ConfigWriteError,
    ConfigWriter,
    Edit,
    atomic_write,
    split_key_path,
)


def accept(candidate: LoadedConfig) -> None:
    return None


def test_key_paths() -> None:
    assert split_key_path("a.b") == ["a", "b"]
    assert split_key_path('projects."/home/x".trust_level') == [
        "projects",
        "/home/x",
        "trust_level",
    ]
    for bad in ("", "a..b", "a b", "a.", "= 1"):
        with pytest.raises(ConfigWriteError):
            split_key_path(bad)


def test_new_file_is_private_and_versions_match_config_read(tmp_path: Path) -> None:
    writer = ConfigWriter(load_config(tmp_path), accept)
    result = writer.write([Edit("model", "m"), Edit("features.shell_tool", False)])
    path = tmp_path / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert result.version == version_of(load_config(tmp_path).file_values)
    assert result.values == {"model": "m", "features": {"shell_tool": False}}


def test_failed_rename_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.toml"
    path.write_text('model = "old"  # keep\n', encoding="utf-8")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError):
        atomic_write(path, 'model = "new"\n')
    assert path.read_text(encoding="utf-8") == 'model = "old"  # keep\n'
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]


def test_stale_version_and_refused_candidate_touch_nothing(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('model = "old"\n', encoding="utf-8")
    before = path.stat().st_mtime_ns

    def refuse(candidate: LoadedConfig) -> None:
        raise ConfigError(f"no: {candidate.get('model')}")

    with pytest.raises(ConfigWriteError) as stale:
        ConfigWriter(load_config(tmp_path), accept).write(
            [Edit("model", "x")], expected_version="sha256:" + "0" * 64
        )
    assert stale.value.code == "configVersionConflict"
    with pytest.raises(ConfigWriteError) as refused:
        ConfigWriter(load_config(tmp_path), refuse).write([Edit("model", "x")])
    assert refused.value.code == "configValidationError" and "no: x" in refused.value.message
    assert path.read_text(encoding="utf-8") == 'model = "old"\n'
    assert path.stat().st_mtime_ns == before
