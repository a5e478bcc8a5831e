"""The skills engine without a server: parsing ``SKILL.md``, the scan cache, mentions, and the
bound on the available-skills list."""

from __future__ import annotations

from pathlib import Path

from appserver.engine.skills.catalog import SkillsCatalog
from appserver.engine.skills.loader import Skill, SkillError, read_skill
from appserver.engine.skills.prompt import (
    DEFAULT_CHAR_BUDGET,
    available_skills_section,
    mentioned_skills,
)
from appserver.engine.skills.roots import SkillPlaces


def skill_file(tmp_path: Path, text: str, folder: str = "demo") -> Path:
    path = tmp_path / folder / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    result = read_skill(skill_file(tmp_path, text), "repo")
    assert isinstance(result, SkillError), result
    return result.message


def test_front_matter_rules(tmp_path: Path) -> None:
    assert error_of(tmp_path, "no front matter") == "missing YAML frontmatter delimited by ---"
    assert error_of(tmp_path, "---\nname: x\n") == "missing YAML frontmatter delimited by ---"
    assert error_of(tmp_path, "---\n---\n") == "missing YAML frontmatter delimited by ---"
    assert error_of(tmp_path, "---\nname: x\n---\n") == "missing field `description`"
    assert error_of(tmp_path, "---\nname: [1\n---\n").startswith("invalid YAML: ")
    assert error_of(tmp_path, "---\n- a list\n---\n").startswith("invalid YAML: ")
    assert error_of(tmp_path, "---\nname: 3\ndescription: d\n---\n").startswith("invalid YAML")
    long_name = "n" * 65
    assert error_of(tmp_path, f"---\nname: {long_name}\ndescription: d\n---\n") == (
        "invalid name: exceeds maximum length of 64 characters"
    )
    assert "invalid description" in error_of(tmp_path, f"---\ndescription: {'d' * 1025}\n---\n")
    unreadable = skill_file(tmp_path, "x", "bin")
    unreadable.write_bytes(b"\xff\xfe")
    result = read_skill(unreadable, "user")
    assert isinstance(result, SkillError) and result.message.startswith("failed to read file")


def test_name_defaults_to_the_folder_and_interface(tmp_path: Path) -> None:
    path = skill_file(tmp_path, "---\ndescription: |\n  two\n  lines\n---\nbody", "my-tool")
    (path.parent / "agents").mkdir()
    (path.parent / "agents/openai.yaml").write_text(
        "interface:\n  display_name: My Tool\n  icon_small: ./assets/s.svg\n"
        "  icon_large: ../escape.png\n  brand_color: '#12ab9F'\n"
        "  default_prompt: Use $my-tool\n",
        encoding="utf-8",
    )
    skill = read_skill(path, "repo")
    assert isinstance(skill, Skill)
    assert skill.name == "my-tool" and skill.description == "two lines"
    assert skill.interface == {
        "displayName": "My Tool",
        "shortDescription": None,
        "iconSmall": str(path.parent / "assets/s.svg"),
        "iconLarge": None,  # outside assets/: ignored
        "iconSmallUrl": None,
        "iconLargeUrl": None,
        "brandColor": "#12ab9F",
        "defaultPrompt": "Use $my-tool",
    }
    # A broken openai.yaml never blocks the skill.
    (path.parent / "agents/openai.yaml").write_text("interface: [", encoding="utf-8")
    again = read_skill(path, "repo")
    assert isinstance(again, Skill) and again.interface is None


def places(tmp_path: Path) -> SkillPlaces:
    return SkillPlaces(home=tmp_path / "home", user_home=None, admin_dir=tmp_path / "admin")


def test_scan_reads_only_changed_files(tmp_path: Path) -> None:
    cwd = tmp_path / "repo"
    root = cwd / ".agents/skills"
    for n in range(3):
        skill_file(root, f"---\nname: s{n}\ndescription: d{n}\n---\n", f"s{n}")
    catalog = SkillsCatalog(places(tmp_path))
    first, changed = catalog.scan(cwd)
    assert [s.name for s in first.skills] == ["s0", "s1", "s2"] and not changed
    assert catalog.files_read == 3
    # Nothing changed on disk: nothing is read again, and the set is the same.
    again, changed = catalog.scan(cwd)
    assert again == first and not changed and catalog.files_read == 3
    # One file edited: that one is read again, and the set changed.
    skill_file(root, "---\nname: s1\ndescription: new\n---\n", "s1")
    edited, changed = catalog.scan(cwd)
    assert changed and catalog.files_read == 4
    assert [s.description for s in edited.skills] == ["d0", "new", "d2"]
    # force re-reads every file.
    catalog.scan(cwd, force=True)
    assert catalog.files_read == 7


def test_scan_limits_hidden_and_symlinks(tmp_path: Path) -> None:
    cwd = tmp_path / "repo"
    root = cwd / ".agents/skills"
    skill_file(root, "---\nname: hidden\ndescription: d\n---\n", ".hidden")
    deep = "/".join(f"l{i}" for i in range(7))
    skill_file(root, "---\nname: deep\ndescription: d\n---\n", deep)
    skill_file(root, "---\nname: ok6\ndescription: d\n---\n", "/".join(f"m{i}" for i in range(5)))
    target = tmp_path / "elsewhere"
    skill_file(target, "---\nname: linked\ndescription: d\n---\n", "t")
    (root / "link").symlink_to(target, target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)
    found, _ = SkillsCatalog(places(tmp_path)).scan(cwd)
    assert sorted(s.name for s in found.skills) == ["linked", "ok6"]
    linked = next(s for s in found.skills if s.name == "linked")
    assert linked.path == (target / "t/SKILL.md").resolve()


def make_skill(name: str, description: str = "d", folder: str | None = None) -> Skill:
    path = Path("/skills") / (folder or name) / "SKILL.md"
    return Skill(
        name=name, description=description, short_description=None, path=path, scope="repo"
    )


def test_mentions() -> None:
    demo, twin_a, twin_b = make_skill("demo"), make_skill("twin", folder="a"), make_skill("twin")
    home = make_skill("HOME")
    skills = [demo, twin_a, twin_b, home]

    def names(*inputs: dict[str, str]) -> list[str]:
        return [str(s.path) for s in mentioned_skills(list(inputs), skills)]

    def text(t: str) -> dict[str, str]:
        return {"type": "text", "text": t}

    assert names(text("run $demo, then $demo again")) == ["/skills/demo/SKILL.md"]
    assert names(text("$demos and demo and $ demo")) == []
    # An ambiguous name selects nothing; a link or an input item picks by path.
    assert names(text("$twin")) == []
    assert names(text("[$twin](/skills/a/SKILL.md)")) == ["/skills/a/SKILL.md"]
    item = {"type": "skill", "name": "twin", "path": "/skills/twin/SKILL.md"}
    assert names(item, text("also $demo")) == ["/skills/twin/SKILL.md", "/skills/demo/SKILL.md"]
    # Environment variables are not mentions; unknown paths select nothing.
    assert names(text("echo $HOME")) == []
    assert names({"type": "skill", "name": "x", "path": "/nowhere/SKILL.md"}) == []


def test_available_list_is_bounded() -> None:
    few = [make_skill(f"s{i}", "A description.") for i in range(3)]
    section = available_skills_section(few)
    assert section is not None and section.startswith("<skills_instructions>\n## Skills")
    assert "- s0: A description. (file: /skills/s0/SKILL.md)" in section
    assert available_skills_section([]) is None

    def listed(section: str) -> list[str]:
        return [line for line in section.splitlines() if line.startswith("- s")]

    # Long descriptions: every skill stays, the descriptions are shortened to fit.
    many = [make_skill(f"s{i:02d}", "word " * 200) for i in range(40)]
    shortened = available_skills_section(many)
    assert shortened is not None
    lines = listed(shortened)
    assert len(lines) == 40
    assert sum(len(line) + 1 for line in lines) <= DEFAULT_CHAR_BUDGET
    assert all(len(line) < 400 for line in lines) and "word word" in lines[0]
    # Too many even for bare lines: the rest are left out, and the section says so.
    crowd = [make_skill(f"s{i:03d}", "x") for i in range(400)]
    crowded = available_skills_section(crowd)
    assert crowded is not None
    kept = listed(crowded)
    assert 0 < len(kept) < 400
    assert sum(len(line) + 1 for line in kept) <= DEFAULT_CHAR_BUDGET
    assert f"({400 - len(kept)} more skills are installed but not listed" in crowded
    # With a known context window the budget is 2% of it, in tokens (bytes / 4).
    window = available_skills_section(crowd, context_window=1_000_000)
    assert window is not None and len(listed(window)) == 400
