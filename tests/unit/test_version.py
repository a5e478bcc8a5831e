"""The version numbers live once, in ``appserver.protocol.version``: the package re-exports them
and pyproject.toml's ``version`` says the same."""

from __future__ import annotations

import tomllib
from pathlib import Path

import appserver
from appserver.protocol.version import APPSERVER_VERSION, PROTOCOL_VERSION


def test_the_package_version_is_pyprojects() -> None:
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    assert project["version"] == APPSERVER_VERSION == appserver.__version__
    assert appserver.PROTOCOL_VERSION == PROTOCOL_VERSION
