"""Tests for the apply_patch parser, planner, writer and turn diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from appserver.engine.tools.patch import (
    AddFile,
    DeleteFile,
    PatchError,
    UpdateFile,
    aggregate_diff,
    apply_planned,
    parse_patch,
    plan_patch,
    to_v2_changes,
)


def patch(*body: str) -> str:
    return "\n".join(["*** Begin Patch", *body, "*** End Patch"]) + "\n"


def test_parse_all_operations() -> None:
    ops = parse_patch(
        patch(
            "*** Add File: new.txt",
            "+one",
            "+two",
            "*** Delete File: old.txt",
            "*** Update File: a.py",
            "*** Move to: b.py",
            "@@ def foo():",
            " x = 1",
            "-y = 2",
            "+y = 3",
            "*** End of File",
        )
    )
    assert ops[0] == AddFile("new.txt", "one\ntwo\n")
    assert ops[1] == DeleteFile("old.txt")
    upd = ops[2]
    assert isinstance(upd, UpdateFile)
    assert (upd.path, upd.move_to) == ("a.py", "b.py")
    (hunk,) = upd.hunks
    assert hunk.context == "def foo():"
    assert hunk.old_lines == ["x = 1", "y = 2"]
    assert hunk.new_lines == ["x = 1", "y = 3"]
    assert hunk.is_end_of_file


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "first line"),
        ("*** Begin Patch\n*** Add File: x\n+a\n", "last line"),
        (patch("*** Add File: x", "oops"), "must start with '+'"),
        (patch("*** Frobnicate File: x"), "Invalid line 2"),
        (patch("*** Update File: x"), "no hunks"),
        (patch("*** Update File: x", "@@", "?bad"), "Invalid line 4"),
        (patch("*** Update File: x", "@@", "@@", " a"), "Empty hunk"),
        (patch("*** Add File: "), "Invalid line"),
        (patch(), "no file operations"),
    ],
)
def test_parse_errors(text: str, fragment: str) -> None:
    with pytest.raises(PatchError) as info:
        parse_patch(text)
    assert fragment in info.value.message


def test_parse_tolerates_heredoc_wrapper_and_first_hunk_without_header() -> None:
    text = "apply_patch <<'EOF'\n" + patch("*** Update File: f", " a", "-b", "+c") + "EOF\n"
    (op,) = parse_patch(text)
    assert isinstance(op, UpdateFile)
    assert op.hunks[0].context is None
    assert op.hunks[0].old_lines == ["a", "b"]


def test_add_file(tmp_path: Path) -> None:
    changes = plan_patch(patch("*** Add File: sub/dir/new.txt", "+hello", "+world"), tmp_path)
    (ch,) = changes
    assert ch.path == str(tmp_path / "sub/dir/new.txt")
    assert ch.kind == "add"
    assert ch.old_text is None and ch.new_text == "hello\nworld\n"
    assert "--- /dev/null" in ch.diff and "+++ b/sub/dir/new.txt" in ch.diff
    assert not (tmp_path / "sub").exists()  # planning never writes
    apply_planned(changes)
    assert (tmp_path / "sub/dir/new.txt").read_text() == "hello\nworld\n"
    assert to_v2_changes(changes) == [{"path": ch.path, "kind": {"type": "add"}, "diff": ch.diff}]


def test_update_multi_hunk_with_move(tmp_path: Path) -> None:
    src = tmp_path / "pkg" / "mod.py"
    src.parent.mkdir()
    src.write_text(
        "import os\n\ndef foo():\n    return 1\n\ndef bar():\n    return 2\n\ndef baz():\n"
        "    return 3\n"
    )
    text = patch(
        "*** Update File: pkg/mod.py",
        "*** Move to: pkg/renamed.py",
        "@@ def foo():",
        "-    return 1",
        "+    return 10",
        "@@ def baz():",
        "-    return 3",
        "+    return 30",
        "+",
        "+def qux():",
        "+    return 4",
    )
    changes = plan_patch(text, tmp_path)
    (ch,) = changes
    dest = tmp_path / "pkg" / "renamed.py"
    assert ch.kind == "update" and ch.move_path == str(dest)
    assert "--- a/pkg/mod.py" in ch.diff and "+++ b/pkg/renamed.py" in ch.diff
    assert "-    return 1\n+    return 10\n" in ch.diff
    apply_planned(changes)
    assert not src.exists()
    assert dest.read_text() == (
        "import os\n\ndef foo():\n    return 10\n\ndef bar():\n    return 2\n\ndef baz():\n"
        "    return 30\n\ndef qux():\n    return 4\n"
    )
    (v2,) = to_v2_changes(changes)
    assert v2["kind"] == {"type": "update", "movePath": str(dest)}


def test_update_context_lines_disambiguate(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("a\nx\nb\nx\nc\n")
    apply_planned(plan_patch(patch("*** Update File: f.txt", " b", "-x", "+Y"), tmp_path))
    assert f.read_text() == "a\nx\nb\nY\nc\n"


def test_update_matches_with_whitespace_fallback_and_keeps_crlf(tmp_path: Path) -> None:
    f = tmp_path / "w.txt"
    f.write_bytes(b"alpha  \r\n    beta\r\ngamma\r\n")
    text = patch("*** Update File: w.txt", " alpha", "-beta", "+BETA")
    apply_planned(plan_patch(text, tmp_path))
    assert f.read_bytes() == b"alpha  \r\nBETA\r\ngamma\r\n"


def test_end_of_file_prefers_last_occurrence(tmp_path: Path) -> None:
    f = tmp_path / "e.txt"
    f.write_text("end\nmiddle\nend\n")
    text = patch("*** Update File: e.txt", "-end", "+END", "*** End of File")
    apply_planned(plan_patch(text, tmp_path))
    assert f.read_text() == "end\nmiddle\nEND\n"


def test_file_without_trailing_newline_diff_marker(tmp_path: Path) -> None:
    f = tmp_path / "n.txt"
    f.write_text("a\nb")
    (ch,) = plan_patch(patch("*** Update File: n.txt", "-b", "+c"), tmp_path)
    assert "\\ No newline at end of file" in ch.diff
    assert ch.new_text == "a\nc\n"


def test_delete_file_absolute_path(tmp_path: Path) -> None:
    f = tmp_path / "gone.txt"
    f.write_text("bye\n")
    other_cwd = tmp_path / "elsewhere"
    other_cwd.mkdir()
    changes = plan_patch(patch(f"*** Delete File: {f}"), other_cwd)
    (ch,) = changes
    assert ch.kind == "delete" and ch.path == str(f) and ch.old_text == "bye\n"
    assert "+++ /dev/null" in ch.diff and "-bye" in ch.diff
    apply_planned(changes)
    assert not f.exists()
    assert to_v2_changes(changes)[0]["kind"] == {"type": "delete"}


def test_paths_are_normalised(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (ch,) = plan_patch(patch("*** Add File: d/../d/./x.txt", "+1"), tmp_path)
    assert ch.path == str(tmp_path / "d" / "x.txt")


def test_failing_hunk_writes_nothing(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    b = tmp_path / "b.txt"
    a.write_text("one\n")
    b.write_text("two\n")
    text = patch(
        "*** Add File: c.txt",
        "+new",
        "*** Update File: a.txt",
        "-one",
        "+ONE",
        "*** Update File: b.txt",
        "-not there",
        "+x",
    )
    with pytest.raises(PatchError, match=r"Failed to find expected lines in b\.txt"):
        plan_patch(text, tmp_path)
    assert a.read_text() == "one\n" and b.read_text() == "two\n"
    assert not (tmp_path / "c.txt").exists()


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (("*** Add File: exists.txt", "+x"), "already exists"),
        (("*** Delete File: missing.txt",), "does not exist"),
        (("*** Update File: missing.txt", "-a", "+b"), "does not exist"),
        (("*** Update File: exists.txt", "@@ nowhere", "-a", "+b"), "Failed to find context"),
    ],
)
def test_plan_errors(tmp_path: Path, body: tuple[str, ...], fragment: str) -> None:
    (tmp_path / "exists.txt").write_text("a\n")
    with pytest.raises(PatchError, match=fragment):
        plan_patch(patch(*body), tmp_path)


def test_apply_refuses_when_file_changed_since_planning(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("a\n")
    changes = plan_patch(patch("*** Update File: f.txt", "-a", "+b"), tmp_path)
    f.write_text("edited meanwhile\n")
    with pytest.raises(PatchError, match="changed on disk"):
        apply_planned(changes)
    assert f.read_text() == "edited meanwhile\n"


def test_apply_keeps_file_mode(tmp_path: Path) -> None:
    f = tmp_path / "run.sh"
    f.write_text("echo a\n")
    os.chmod(f, 0o755)
    apply_planned(plan_patch(patch("*** Update File: run.sh", "-echo a", "+echo b"), tmp_path))
    assert os.stat(f).st_mode & 0o777 == 0o755


def test_ops_in_one_patch_see_each_other(tmp_path: Path) -> None:
    text = patch("*** Add File: x.txt", "+1", "*** Update File: x.txt", "-1", "+2")
    changes = plan_patch(text, tmp_path)
    assert [c.kind for c in changes] == ["add", "update"]
    apply_planned(changes)
    assert (tmp_path / "x.txt").read_text() == "2\n"


def test_aggregate_diff_across_patches(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("a\nb\nc\n")
    (tmp_path / "doomed.txt").write_text("z\n")
    first = plan_patch(patch("*** Update File: f.txt", "-a", "+A"), tmp_path)
    apply_planned(first)
    second = plan_patch(
        patch(
            "*** Update File: f.txt",
            "-c",
            "+C",
            "*** Add File: new.txt",
            "+n",
            "*** Delete File: doomed.txt",
        ),
        tmp_path,
    )
    apply_planned(second)
    diff = aggregate_diff([first, second])
    # One diff for f.txt, from the original to the latest.
    assert diff.count("--- a/f.txt") == 1
    assert "-a\n+A\n" in diff and "-c\n+C\n" in diff
    assert "+++ b/new.txt" in diff and "+n\n" in diff
    assert "--- a/doomed.txt\n+++ /dev/null" in diff
    assert aggregate_diff([*first, *second]) == diff  # flat lists work too


def test_aggregate_diff_cancelling_changes_and_moves(tmp_path: Path) -> None:
    f = tmp_path / "f.txt"
    f.write_text("a\n")
    p1 = plan_patch(patch("*** Update File: f.txt", "-a", "+b"), tmp_path)
    apply_planned(p1)
    p2 = plan_patch(patch("*** Update File: f.txt", "-b", "+a"), tmp_path)
    apply_planned(p2)
    p3 = plan_patch(patch("*** Add File: tmp.txt", "+t"), tmp_path)
    apply_planned(p3)
    p4 = plan_patch(patch("*** Delete File: tmp.txt"), tmp_path)
    apply_planned(p4)
    assert aggregate_diff([p1, p2, p3, p4]) == ""

    p5 = plan_patch(patch("*** Update File: f.txt", "*** Move to: g.txt", "-a", "+c"), tmp_path)
    apply_planned(p5)
    p6 = plan_patch(patch("*** Update File: g.txt", "-c", "+d"), tmp_path)
    apply_planned(p6)
    diff = aggregate_diff([p1, p2, p3, p4, p5, p6])
    assert "--- a/f.txt\n+++ b/g.txt\n" in diff
    assert "-a\n+d\n" in diff
    assert diff.count("diff --git") == 1
