"""``fd_write.FdTree``: writes that follow no symbolic link, with the caller's re-check.

On the real file system (a temporary directory): a directory that became a link fails the
walk with nothing written through it; a file that is a link is replaced or unlinked itself;
missing directories are created; permission bits are kept; a FIFO is refused without
blocking; a directory moved after it was opened is refused by ``may_write`` (its current
path comes from ``/proc/self/fd``); and patches planned before a swap fail when applied.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from appserver.engine.tools.fd_write import FdTree, UnsafeWrite
from appserver.engine.tools.patch import PatchError, apply_planned, plan_patch


@pytest.fixture
def tree_root(tmp_path: Path) -> Path:
    root = tmp_path.resolve()
    (root / "ws" / "sub").mkdir(parents=True)
    (root / "outside").mkdir()
    (root / "outside" / "victim.txt").write_text("victim\n")
    return root


def test_a_directory_link_on_the_way_is_refused(tree_root: Path) -> None:
    (tree_root / "ws" / "link").symlink_to(tree_root / "outside")
    with FdTree() as tree:
        with pytest.raises(UnsafeWrite, match="link is not a directory"):
            tree.replace(str(tree_root / "ws" / "link" / "new.txt"), b"x")
        with pytest.raises(UnsafeWrite):
            tree.unlink(str(tree_root / "ws" / "link" / "victim.txt"))
        with pytest.raises(UnsafeWrite):
            tree.read(str(tree_root / "ws" / "link" / "victim.txt"))
    assert sorted(os.listdir(tree_root / "outside")) == ["victim.txt"]


def test_a_file_link_is_replaced_or_removed_not_followed(tree_root: Path) -> None:
    victim = tree_root / "outside" / "victim.txt"
    link = tree_root / "ws" / "linkfile"
    link.symlink_to(victim)
    with FdTree() as tree:
        assert tree.read(str(link)) == b"victim\n"  # read as planning did
        tree.replace(str(link), b"mine\n")
    assert not link.is_symlink() and link.read_text() == "mine\n"
    assert victim.read_text() == "victim\n"
    link.unlink()
    link.symlink_to(victim)
    with FdTree() as tree:
        tree.unlink(str(link))
    assert not os.path.lexists(link) and victim.read_text() == "victim\n"


def test_missing_directories_are_created_and_modes_kept(tree_root: Path) -> None:
    deep = tree_root / "ws" / "a" / "b" / "c.txt"
    script = tree_root / "ws" / "run.sh"
    script.write_text("old\n")
    script.chmod(0o750)
    with FdTree() as tree:
        assert tree.read(str(deep)) is None
        tree.replace(str(deep), b"deep\n")
        tree.replace(str(script), b"new\n")
    assert deep.read_text() == "deep\n"
    assert stat.S_IMODE(script.stat().st_mode) == 0o750 and script.read_text() == "new\n"
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(deep.stat().st_mode) == 0o666 & ~umask
    assert not [n for n in os.listdir(tree_root / "ws") if n.endswith(".tmp")]


def test_a_fifo_is_refused_without_blocking(tree_root: Path) -> None:
    fifo = tree_root / "ws" / "pipe"
    os.mkfifo(fifo)
    with FdTree() as tree, pytest.raises(UnsafeWrite, match="not a regular file"):
        tree.read(str(fifo))


def test_a_directory_moved_after_the_walk_is_refused_by_may_write(tree_root: Path) -> None:
    ws = tree_root / "ws"
    allowed = []

    def may_write(path: str) -> bool:
        allowed.append(path)
        return path.startswith(f"{ws}/")

    with FdTree(may_write) as tree:
        tree.directory(str(ws / "sub"), create=False)  # walked and held open
        (ws / "sub").rename(tree_root / "outside" / "sub")  # then moved out of the root
        with pytest.raises(UnsafeWrite, match="refusing to write"):
            tree.replace(str(ws / "sub" / "x.txt"), b"x")
    assert allowed == [str(tree_root / "outside" / "sub" / "x.txt")]
    assert os.listdir(tree_root / "outside" / "sub") == []


def test_relative_or_unnormalised_paths_are_a_programming_error(tree_root: Path) -> None:
    with FdTree() as tree:
        for bad in ("rel/x", f"{tree_root}/ws/../outside/x", f"{tree_root}/ws/"):
            with pytest.raises(ValueError):
                tree.replace(bad, b"x")


def test_a_plan_applied_after_a_swap_writes_nothing(tree_root: Path) -> None:
    ws, outside = tree_root / "ws", tree_root / "outside"
    (ws / "sub" / "victim.txt").write_text("victim\n")
    text = "*** Begin Patch\n*** Update File: sub/victim.txt\n@@\n-victim\n+owned\n*** End Patch\n"
    changes = plan_patch(text, ws)
    assert changes[0].target == str(ws / "sub" / "victim.txt")
    (ws / "sub").rename(ws / "sub-moved")
    (ws / "sub").symlink_to(outside)
    with pytest.raises(PatchError, match="sub is not a directory"):
        apply_planned(changes)
    assert (outside / "victim.txt").read_text() == "victim\n"


def test_the_target_is_the_directory_resolved_when_planned(tree_root: Path) -> None:
    ws = tree_root / "ws"
    (ws / "alias").symlink_to(ws / "sub")  # a link inside the workspace is fine to plan
    changes = plan_patch("*** Begin Patch\n*** Add File: alias/f\n+x\n*** End Patch\n", ws)
    assert changes[0].path == str(ws / "alias" / "f")
    assert changes[0].target == str(ws / "sub" / "f")
    apply_planned(changes)
    assert (ws / "sub" / "f").read_text() == "x\n"


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("a\x00b", "NUL byte"),
        ("a\ud800b", "not text the file system can store"),
        ("n" * 256, "component is longer than 255 bytes"),
        ("/".join(["d"] * 2100), "longer than 4095 bytes"),
    ],
)
def test_invalid_paths_are_refused_while_planning(tmp_path: Path, path: str, why: str) -> None:
    for body in (f"*** Add File: {path}\n+x\n", f"*** Delete File: {path}\n"):
        with pytest.raises(PatchError) as info:
            plan_patch(f"*** Begin Patch\n{body}*** End Patch\n", tmp_path)
        message = info.value.message
        assert ("invalid path" in message and why in message) or "lone surrogate" in message
    (tmp_path / "f").write_text("x\n")
    move = f"*** Update File: f\n*** Move to: {path}\n"
    with pytest.raises(PatchError):
        plan_patch(f"*** Begin Patch\n{move}*** End Patch\n", tmp_path)
    assert os.listdir(tmp_path) == ["f"]
