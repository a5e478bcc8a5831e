"""Skills over all three transports: discovery in every scope, ``skills/list`` with its
errors, ``forceReload``, extra roots, ``skills/changed``, and what the model gets (the
available-skills list in its instructions; a named skill's whole file as a ``<skill>``
message after the user's).

Every test gets its own project (a git root with a subdirectory as the cwd), user home and
admin directory, passed to the server through ``HOME`` and ``APPSERVER_ADMIN_DIR``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, start_thread
from tests.harness import WireClient, open_client
from tests.support import mock_model as mm


def write_skill(
    root: Path, folder: str, name: str | None, description: str, body: str = ""
) -> Path:
    path = root / folder / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    head = f"name: {name}\n" if name is not None else ""
    path.write_text(f"---\n{head}description: {description}\n---\n{body}", encoding="utf-8")
    return path


@dataclass
class Places:
    home: Path  # $APPSERVER_HOME
    project: Path  # the git root
    cwd: Path  # project/sub
    user_home: Path  # $HOME
    admin: Path  # $APPSERVER_ADMIN_DIR

    @property
    def env(self) -> dict[str, str]:
        return {**ENV, "HOME": str(self.user_home), "APPSERVER_ADMIN_DIR": str(self.admin)}


@pytest.fixture
def places(home: Path, tmp_path: Path) -> Places:
    project = tmp_path / "project"
    (project / ".git").mkdir(parents=True)
    cwd = project / "sub"
    cwd.mkdir()
    user_home = tmp_path / "user"
    user_home.mkdir()
    return Places(home, project.resolve(), cwd.resolve(), user_home, tmp_path / "admin")


async def list_skills(c: WireClient, cwd: Path, **params: Any) -> dict[str, Any]:
    result = await c.call("skills/list", {"cwds": [str(cwd)], **params})
    assert len(result["data"]) == 1 and result["data"][0]["cwd"] == str(cwd)
    entry: dict[str, Any] = result["data"][0]
    return entry


def by_name(entry: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in entry["skills"]}


async def test_every_scope_and_a_bad_file(transport: str, places: Places) -> None:
    p = places
    write_config(p.home, "http://127.0.0.1:9")
    write_skill(p.project / ".agents/skills", "root", "root-skill", "from the project root")
    write_skill(p.cwd / ".agents/skills", "deep", "sub-skill", "from the cwd")
    write_skill(p.project / ".codex/skills", "codexy", "codex-dir", "from .codex")
    write_skill(p.home / "skills", "mine", "home-skill", "from APPSERVER_HOME")
    write_skill(p.user_home / ".agents/skills", "agents", "user-agents", "from ~/.agents")
    write_skill(p.home / "skills/.system", "sys", "system-skill", "bundled")
    write_skill(p.admin / "skills", "adm", "admin-skill", "from the admin directory")
    # Above the project root: not the project's.
    write_skill(p.project.parent / ".agents/skills", "outside", "outside", "not in the project")
    bad = p.project / ".agents/skills/bad/SKILL.md"
    bad.parent.mkdir()
    bad.write_text("# no front matter\n", encoding="utf-8")
    (p.home / "skills/.system/broken").mkdir(parents=True)
    (p.home / "skills/.system/broken/SKILL.md").write_text("nothing\n", encoding="utf-8")
    short = p.project / ".agents/skills/short/SKILL.md"
    short.parent.mkdir()
    short.write_text(
        "---\nname: shorty\ndescription: >\n  folded\n  text\n"
        "metadata:\n  short-description: brief\n---\nbody\n",
        encoding="utf-8",
    )
    async with open_client(transport, p.home, env=p.env) as c:
        entry = await list_skills(c, p.cwd)
    skills = by_name(entry)
    scopes = {name: s["scope"] for name, s in skills.items()}
    assert scopes == {
        "root-skill": "repo",
        "sub-skill": "repo",
        "codex-dir": "repo",
        "shorty": "repo",
        "home-skill": "user",
        "user-agents": "user",
        "system-skill": "system",
        "admin-skill": "admin",
    }
    # Ordered by scope, then name.
    assert [s["name"] for s in entry["skills"]][:4] == [
        "codex-dir",
        "root-skill",
        "shorty",
        "sub-skill",
    ]
    demo = skills["root-skill"]
    assert demo["path"] == str(p.project / ".agents/skills/root/SKILL.md")
    assert demo["enabled"] is True and demo["pluginId"] is None
    assert demo["description"] == "from the project root" and "shortDescription" not in demo
    assert skills["shorty"]["description"] == "folded text"
    assert skills["shorty"]["shortDescription"] == "brief"
    # The bad repo file is an error entry; the broken system one is not reported.
    assert entry["errors"] == [
        {"path": str(bad), "message": "missing YAML frontmatter delimited by ---"}
    ]


async def test_force_reload_and_changes_on_disk(transport: str, places: Places) -> None:
    p = places
    write_config(p.home, "http://127.0.0.1:9")
    root = p.project / ".agents/skills"
    write_skill(root, "one", "one", "first")
    async with open_client(transport, p.home, env=p.env) as c:
        first = await list_skills(c, p.cwd, forceReload=True)
        assert list(by_name(first)) == ["one"]
        # Unchanged: the same answer (from the cache, see test_skills_catalog).
        assert await list_skills(c, p.cwd) == first
        write_skill(root, "two", "two", "second")
        forced = await list_skills(c, p.cwd, forceReload=True)
        assert list(by_name(forced)) == ["one", "two"]
        # The change was seen, so every client hears of it.
        await c.notification("skills/changed")
        # An edited file is seen without forceReload too: its stamp changed.
        write_skill(root, "one", "one", "edited")
        again = await list_skills(c, p.cwd)
        assert by_name(again)["one"]["description"] == "edited"
        await c.notification("skills/changed")
        # Several cwds in one call; an empty list means the server's own cwd.
        both = await c.call("skills/list", {"cwds": [str(p.cwd), str(p.project.parent)]})
        assert [len(e["skills"]) for e in both["data"]] == [2, 0]
        default = await c.call("skills/list", {})
        assert default["data"][0]["cwd"] == os.getcwd()
        refused = await c.request("skills/list", {"cwds": ["relative/dir"]})
        assert refused["error"]["code"] == -32600
        assert "absolute" in refused["error"]["message"]


async def test_extra_roots(transport: str, places: Places, tmp_path: Path) -> None:
    p = places
    write_config(p.home, "http://127.0.0.1:9")
    extra = tmp_path / "extra"
    write_skill(extra, "x", "extra-skill", "from an extra root")
    async with open_client(transport, p.home, env=p.env) as c:
        assert (await list_skills(c, p.cwd))["skills"] == []
        assert await c.call("skills/extraRoots/set", {"extraRoots": [str(extra)]}) == {}
        # The cwd listed before is scanned again: its skills changed.
        await c.notification("skills/changed")
        skill = by_name(await list_skills(c, p.cwd))["extra-skill"]
        assert skill["scope"] == "user"
        assert await c.call("skills/extraRoots/set", {"extraRoots": []}) == {}
        assert (await list_skills(c, p.cwd))["skills"] == []
        refused = await c.request("skills/extraRoots/set", {"extraRoots": ["rel"]})
        assert refused["error"]["code"] == -32600
        missing = await c.request("skills/extraRoots/set", {})
        assert missing["error"]["code"] == -32600


def input_texts(body: dict[str, Any]) -> list[str]:
    return [
        part["text"]
        for item in body["input"]
        if item.get("type") == "message" and item["role"] == "user"
        for part in item["content"]
        if part["type"] == "input_text"
    ]


async def test_mention_injects_the_skill(transport: str, places: Places, model: Any) -> None:
    p = places
    write_config(p.home, model.base_url)
    path = write_skill(p.cwd / ".agents/skills", "demo", "demo", "Demo things.", "Do X then Y.\n")
    write_skill(p.home / "skills", "other", "other", "Another one.", "Never sent.\n")
    model.add(mm.sse_text("ok"))
    model.add(mm.sse_text("ok"))
    async with open_client(transport, p.home, env=p.env) as c:
        tid = await start_thread(c, p.cwd)
        await c.call(
            "turn/start",
            {"threadId": tid, "input": [{"type": "text", "text": "Use $demo on $PATH please"}]},
        )
        assert (await completed_turn(c))["status"] == "completed"
        await c.call(
            "turn/start", {"threadId": tid, "input": [{"type": "text", "text": "no mention"}]}
        )
        assert (await completed_turn(c))["status"] == "completed"
    first, second = model.requests[-2].body, model.requests[-1].body
    skill_text = f"<skill>\n<name>demo</name>\n<path>{path}</path>\n{path.read_text()}\n</skill>"
    assert input_texts(first) == ["Use $demo on $PATH please", skill_text]
    # The model sees the list of available skills in its instructions, every turn.
    for body in (first, second):
        assert "<skills_instructions>" in body["instructions"]
        assert f"- demo: Demo things. (file: {path})" in body["instructions"]
        assert "- other: Another one. (file: " in body["instructions"]
    # No mention: no skill body (the first turn's stays in the history).
    assert input_texts(second)[-1] == "no mention"
    assert sum("<skill>" in t for t in input_texts(second)) == 1
    assert not any("Never sent." in t for t in input_texts(second))


async def test_skill_input_item_and_changed_at_turn_start(
    transport: str, places: Places, model: Any
) -> None:
    p = places
    write_config(p.home, model.base_url)
    path = write_skill(p.project / ".agents/skills", "item", "picked", "Picked by item.", "B\n")
    model.add(mm.sse_text("ok"))
    async with open_client(transport, p.home, env=p.env) as c:
        tid = await start_thread(c, p.cwd)
        assert len((await list_skills(c, p.cwd))["skills"]) == 1
        write_skill(p.home / "skills", "late", "late", "Added after the list.")
        skill_item = {"type": "skill", "name": "picked", "path": str(path)}
        await c.call(
            "turn/start",
            {"threadId": tid, "input": [{"type": "text", "text": "go"}, skill_item]},
        )
        # The turn's own scan finds the new skill and tells the clients.
        await c.notification("skills/changed")
        turn = await completed_turn(c)
        assert turn["status"] == "completed"
        bad = await c.request(
            "turn/start", {"threadId": tid, "input": [{"type": "skill", "name": "x"}]}
        )
        assert bad["error"]["code"] == -32600
    body = model.requests[-1].body
    assert input_texts(body) == [
        "go",
        f"<skill>\n<name>picked</name>\n<path>{path}</path>\n{path.read_text()}\n</skill>",
    ]
    assert "- late: Added after the list. (file: " in body["instructions"]
