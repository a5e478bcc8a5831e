"""The README's protocol table is the registry's: it cannot drift from what the server does."""

from __future__ import annotations

import re
from pathlib import Path

from appserver.protocol.registry import MethodRegistry
from appserver.server.app import App
from appserver.server.config import LoadedConfig
from appserver.tools.coverage import (
    HANDLED_NOTIFICATIONS,
    IMPLEMENTED_NOTES,
    NOT_YET_REASONS,
    coverage_markdown,
    implemented_methods,
    not_yet_key,
    not_yet_reason,
    stable_methods,
    stable_notifications,
)


def _registry(home: Path) -> MethodRegistry:
    return App(LoadedConfig(home=home, path=home / "config.toml", values={})).registry


def test_readme_coverage_table_matches_registry(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- coverage:start -->\n(.*?)<!-- coverage:end -->", readme, re.S)
    assert match, "README lost its coverage markers"
    assert match.group(1) == coverage_markdown(_registry(tmp_path))


def test_every_missing_stable_method_has_a_reason(tmp_path: Path) -> None:
    implemented = implemented_methods(_registry(tmp_path))
    missing = [m for m in stable_methods() if m not in implemented]
    assert [m for m in missing if not_yet_reason(m) is None] == []
    table = coverage_markdown(_registry(tmp_path))
    for name in missing:
        (row,) = [line for line in table.splitlines() if f"`{name}`" in line.split(" | ")[0]]
        assert "not yet (replies -32600 unknown variant): " in row, row


def test_no_reason_outlives_its_methods(tmp_path: Path) -> None:
    """Each reason is the one shown for at least one missing method, and no implemented
    method still has a "not yet" reason of its own (implement one, delete its reason)."""
    implemented = implemented_methods(_registry(tmp_path))
    missing = [m for m in stable_methods() if m not in implemented]
    used = {not_yet_key(m) for m in missing}
    assert sorted(set(NOT_YET_REASONS) - used) == []
    assert sorted(k for k in NOT_YET_REASONS if k in implemented) == []
    assert sorted(set(IMPLEMENTED_NOTES) - implemented) == []


def test_the_initialized_notification_is_listed_as_implemented(tmp_path: Path) -> None:
    assert stable_notifications() == ["initialized"]
    assert set(HANDLED_NOTIFICATIONS) == {"initialized"}
    table = coverage_markdown(_registry(tmp_path))
    assert "| `initialized` (notification) | implemented" in table
