"""``fuzzyFileSearch`` over every transport: snake_case results, .gitignore respected (in a
git work tree and in a plain directory), directories matched, bounded, cancellable."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from tests.host.support import HOST_TRANSPORTS, error_of, host_client


@pytest.fixture(params=HOST_TRANSPORTS)
def host_transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_tree(root: Path) -> None:
    (root / "src" / "widgets").mkdir(parents=True)
    (root / "src" / "widgets" / "main_window.py").write_text("")
    (root / "build").mkdir()
    (root / "build" / "main_window.o").write_text("")
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "main.log").write_text("")
    for i in range(80):
        (root / "src" / f"module_{i}.py").write_text("")


@pytest.mark.parametrize("git", [False, True], ids=["plain", "git"])
async def test_search(host_transport: str, home: Path, tmp_path: Path, git: bool) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    make_tree(root)
    if git:
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    async with host_client(host_transport, home, roots=[root]) as c:
        r = await c.call("fuzzyFileSearch", {"query": "mainwin", "roots": [str(root)]})
        assert [f["path"] for f in r["files"]] == ["src/widgets/main_window.py"]
        hit = r["files"][0]
        assert hit["root"] == str(root.resolve())
        assert hit["match_type"] == "file" and hit["file_name"] == "main_window.py"
        assert isinstance(hit["score"], int) and hit["score"] > 0
        path = hit["path"]
        assert "".join(path[i] for i in hit["indices"]).lower() == "mainwin"

        r = await c.call("fuzzyFileSearch", {"query": "widgets", "roots": [str(root)]})
        assert {"path": "src/widgets", "match_type": "directory"}.items() <= r["files"][0].items()
        r = await c.call("fuzzyFileSearch", {"query": "module", "roots": [str(root)]})
        assert len(r["files"]) == 50
        r = await c.call("fuzzyFileSearch", {"query": "mainlog", "roots": [str(root)]})
        assert r["files"] == []
        r = await c.call("fuzzyFileSearch", {"query": "qqqzzz", "roots": [str(root)]})
        assert r == {"files": []}
        err = error_of(await c.request("fuzzyFileSearch", {"query": "x", "roots": ["rel"]}))
        assert err["code"] == -32600

        # Same token twice: both answer, neither hangs (the first may be cancelled: []).
        first = {"query": "module", "roots": [str(root)], "cancellationToken": "t"}
        await c.send({"id": "a", "method": "fuzzyFileSearch", "params": first})
        await c.send({"id": "b", "method": "fuzzyFileSearch", "params": first})
        a, b = await asyncio.gather(c.reply_to("a"), c.reply_to("b"))
        assert len(b["result"]["files"]) == 50 and len(a["result"]["files"]) in (0, 50)
