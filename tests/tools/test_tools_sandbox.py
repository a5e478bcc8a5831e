"""Tests for sandbox policies, writable-root checks and the bubblewrap wrapper."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from appserver.engine.tools.sandbox import (
    SandboxPolicy,
    bwrap_available,
    from_mode,
    is_path_writable,
    wrap_command,
    writable_roots,
)

NEEDS_BWRAP = pytest.mark.skipif(
    not bwrap_available(),
    reason="bubblewrap (bwrap) is not installed or cannot create namespaces here",
)


def workspace(root: Path, **extra: Any) -> dict[str, Any]:
    policy = from_mode("workspace-write", root)
    policy.update(extra)
    return policy


def test_from_mode_shapes(tmp_path: Path) -> None:
    assert from_mode("read-only", tmp_path) == {"type": "readOnly", "networkAccess": False}
    assert from_mode("danger-full-access", tmp_path) == {"type": "dangerFullAccess"}
    assert from_mode("workspace-write", tmp_path) == {
        "type": "workspaceWrite",
        "writableRoots": [str(tmp_path)],
        "networkAccess": False,
        "excludeTmpdirEnvVar": False,
        "excludeSlashTmp": False,
    }
    with pytest.raises(ValueError):
        from_mode("everything", tmp_path)


@pytest.mark.parametrize(
    "wire",
    [
        {"type": "dangerFullAccess"},
        {"type": "readOnly", "networkAccess": True},
        {"type": "externalSandbox", "networkAccess": "enabled"},
        {
            "type": "workspaceWrite",
            "writableRoots": ["/a", "/b"],
            "networkAccess": False,
            "excludeTmpdirEnvVar": True,
            "excludeSlashTmp": False,
        },
    ],
)
def test_policy_round_trip(wire: dict[str, Any]) -> None:
    assert SandboxPolicy.from_dict(wire).to_dict() == wire


@pytest.mark.parametrize(
    "bad",
    [{"type": "nope"}, {}, {"type": "readOnly", "networkAccess": "yes"}],
)
def test_policy_rejects_malformed(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SandboxPolicy.from_dict(bad)


def test_writable_roots_by_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmpdir = tmp_path / "tmpdir"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))
    root = tmp_path / "ws"
    root.mkdir()
    assert writable_roots({"type": "readOnly", "networkAccess": False}, root) == []
    assert writable_roots({"type": "dangerFullAccess"}, root) == [Path("/")]
    roots = writable_roots(workspace(root), root)
    assert roots[0] == root.resolve()
    assert Path("/tmp").resolve() in roots and tmpdir.resolve() in roots
    strict = writable_roots(workspace(root, excludeSlashTmp=True, excludeTmpdirEnvVar=True), root)
    assert strict == [root.resolve()]


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    (root / "src").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    (root / "escape_file").symlink_to(outside / "secret.txt")
    return root, outside


@pytest.mark.parametrize(
    ("rel", "writable"),
    [
        ("src/main.py", True),
        ("new/deeply/nested/file.txt", True),  # judged by nearest existing ancestor
        (".", True),
        ("src/../src/x", True),
        ("../outside/x", False),  # '..' climbs out
        ("src/../../outside/x", False),
        ("new/../../outside/x", False),  # '..' after a non-existent part
        ("escape/x", False),  # symlink inside the root pointing outside
        ("escape/new/dir/x", False),
        ("escape_file", False),  # dangling symlink whose target is outside
    ],
)
def test_is_path_writable_workspace(layout: tuple[Path, Path], rel: str, writable: bool) -> None:
    root, _ = layout
    policy = workspace(root, excludeSlashTmp=True, excludeTmpdirEnvVar=True)
    assert is_path_writable(rel, policy, root) is writable
    assert is_path_writable(root / rel, policy, root) is writable


def test_is_path_writable_absolute_elsewhere(layout: tuple[Path, Path]) -> None:
    root, outside = layout
    policy = workspace(root, excludeSlashTmp=True, excludeTmpdirEnvVar=True)
    assert not is_path_writable(outside / "x", policy, root)
    assert not is_path_writable("/etc/passwd", policy, root)
    # An extra writable root makes it writable; read-only and full access are absolute.
    extra = workspace(root, writableRoots=[str(root), str(outside)], excludeSlashTmp=True)
    assert is_path_writable(outside / "x", extra, root)
    assert not is_path_writable(root / "src" / "x", {"type": "readOnly"}, root)
    assert is_path_writable("/etc/passwd", {"type": "dangerFullAccess"}, root)


def test_wrap_command_full_access_is_unchanged(tmp_path: Path) -> None:
    argv = ["echo", "hi"]
    assert wrap_command(argv, {"type": "dangerFullAccess"}, tmp_path) == argv


def test_wrap_command_without_bwrap_returns_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap in an empty PATH
    assert wrap_command(["true"], {"type": "readOnly"}, tmp_path) is None


@NEEDS_BWRAP
def test_wrap_command_argv_shape(tmp_path: Path) -> None:
    argv = wrap_command(["echo", "hi"], workspace(tmp_path), tmp_path)
    assert argv is not None
    assert argv[-3:] == ["--", "echo", "hi"]
    joined = " ".join(argv)
    assert "--ro-bind / /" in joined
    assert f"--bind {tmp_path.resolve()} {tmp_path.resolve()}" in joined
    assert "--unshare-net" in argv and "--die-with-parent" in argv and "--new-session" in argv
    assert argv[argv.index("--chdir") + 1] == str(tmp_path)
    net = wrap_command(["true"], {"type": "readOnly", "networkAccess": True}, tmp_path)
    assert net is not None and "--unshare-net" not in net and "--bind" not in net


def run(argv: list[str] | None) -> subprocess.CompletedProcess[str]:
    assert argv is not None
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)


@NEEDS_BWRAP
def test_bwrap_workspace_write_enforced(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    policy = workspace(root, excludeSlashTmp=True, excludeTmpdirEnvVar=True)
    inside = run(wrap_command(["sh", "-c", "echo ok > inside.txt"], policy, root))
    assert inside.returncode == 0, inside.stderr
    assert (root / "inside.txt").read_text() == "ok\n"
    blocked = run(wrap_command(["sh", "-c", f"echo no > {outside}/x.txt"], policy, root))
    assert blocked.returncode != 0
    assert not (outside / "x.txt").exists()


@NEEDS_BWRAP
def test_bwrap_read_only_enforced(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("data\n")
    policy = {"type": "readOnly", "networkAccess": False}
    read = run(wrap_command(["cat", "f.txt"], policy, tmp_path))
    assert read.returncode == 0 and read.stdout == "data\n"
    write = run(wrap_command(["sh", "-c", "echo x > g.txt"], policy, tmp_path))
    assert write.returncode != 0
    assert not (tmp_path / "g.txt").exists()


@NEEDS_BWRAP
def test_bwrap_no_network(tmp_path: Path) -> None:
    # /proc/net/dev lists the reader's network namespace: a fresh one has only loopback.
    def interfaces(policy: dict[str, Any]) -> set[str]:
        proc = run(wrap_command(["cat", "/proc/net/dev"], policy, tmp_path))
        assert proc.returncode == 0, proc.stderr
        return {line.split(":")[0].strip() for line in proc.stdout.splitlines() if ":" in line}

    assert interfaces({"type": "readOnly", "networkAccess": False}) == {"lo"}
    with open("/proc/net/dev") as fh:
        host = {line.split(":")[0].strip() for line in fh if ":" in line}
    assert interfaces({"type": "readOnly", "networkAccess": True}) == host
