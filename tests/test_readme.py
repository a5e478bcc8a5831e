"""The README's protocol table is the registry's: it cannot drift from what the server does."""

from __future__ import annotations

import re
from pathlib import Path

from appserver.protocol.coverage import coverage_markdown
from appserver.server.app import App
from appserver.server.config import LoadedConfig


def test_readme_coverage_table_matches_registry(tmp_path: Path) -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- coverage:start -->\n(.*?)<!-- coverage:end -->", readme, re.S)
    assert match, "README lost its coverage markers"
    app = App(LoadedConfig(home=tmp_path, path=tmp_path / "config.toml", values={}))
    assert match.group(1) == coverage_markdown(app.registry)
