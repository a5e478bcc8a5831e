"""Configuration: ``-c key=value`` overrides and malformed ``config.toml`` reported as
``file:line:column``, directly and through the CLI (exit 2, one stderr line, no traceback)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from appserver.server.config import ConfigError, load_config, parse_override
from tests.harness import cli_argv, server_env


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("model=gpt-5", (["model"], "gpt-5")),  # not TOML: taken as a plain string
        ('model="o3"', (["model"], "o3")),
        ("a.b.c=1", (["a", "b", "c"], 1)),
        (" a . b = true ", (["a", "b"], True)),
        ("x=[1, 2]", (["x"], [1, 2])),
        ("x={ y = 1 }", (["x"], {"y": 1})),
        ("x=1.5", (["x"], 1.5)),
        ("x=", (["x"], "")),
        ("x=a=b", (["x"], "a=b")),
    ],
)
def test_parse_override(text: str, expected: tuple[list[str], Any]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["noequals", "=value", " =1", "a..b=1", "a.=1", ".a=1"])
def test_parse_override_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="invalid -c override"):
        parse_override(text)


def test_override_wins_over_file_and_is_marked(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('model = "from-file"\n[tools]\nweb = true\n')
    cfg = load_config(tmp_path, ["model=from-flag", "tools.shell=false"])
    assert cfg.get("model") == "from-flag"
    assert cfg.get("tools") == {"web": True, "shell": False}
    assert cfg.origins == {"model": "override", "tools.web": "user", "tools.shell": "override"}


BROKEN = 'model = "gpt-5"\n\nsandbox_mode = = "read-only"\n'


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(BROKEN)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    text = str(info.value)
    assert f"{tmp_path / 'config.toml'}:3:" in text
    assert "\n" not in text


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("model = 5\n")
    with pytest.raises(ConfigError, match="`model` has the wrong type"):
        load_config(tmp_path)


def test_a_number_of_seconds_must_be_a_number(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('thread_idle_unload_seconds = "soon"\n')
    with pytest.raises(ConfigError, match="`thread_idle_unload_seconds` has the wrong type"):
        load_config(tmp_path)


def test_cli_with_broken_config_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(BROKEN)
    proc = subprocess.run(
        cli_argv("serve", "--stdio", "--home", str(tmp_path)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        env=server_env(),
        timeout=30,
    )
    assert proc.returncode == 2
    assert proc.stdout == b""
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("appserver: malformed config ")
    assert f"{tmp_path / 'config.toml'}:3:" in lines[0]
