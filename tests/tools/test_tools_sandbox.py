"""Tests for sandbox policies, writable-root checks and both backends (bubblewrap, Landlock).

The command tests run under each backend that works here (skipped, naming why, when one does
not): writes outside the roots and into a root's ``.git`` fail, no capabilities (also as root),
no network sockets without network access, and the process and file-size limits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from appserver.engine.tools import confine, sandbox
from appserver.engine.tools.sandbox import (
    Backend,
    SandboxPolicy,
    from_mode,
    is_path_writable,
    protected_paths,
    wrap_command,
    writable_roots,
)

NEEDS_BWRAP = pytest.mark.skipif(
    sandbox.backend_problem("bubblewrap") is not None,
    reason=f"bubblewrap unusable here: {sandbox.backend_problem('bubblewrap')}",
)


def _backend_param(name: Backend) -> Any:
    problem = sandbox.backend_problem(name)
    mark = pytest.mark.skipif(problem is not None, reason=f"{name} unusable here: {problem}")
    return pytest.param(name, marks=mark, id=name)


BACKENDS = [_backend_param("bubblewrap"), _backend_param("landlock")]
AS_ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="only meaningful when running as root")


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
    assert wrap_command(["true"], {"type": "readOnly"}, tmp_path, using="bubblewrap") is None
    monkeypatch.setenv("APPSERVER_SANDBOX_BACKEND", "bubblewrap")
    assert sandbox.backend() is None
    assert wrap_command(["true"], {"type": "readOnly"}, tmp_path) is None


@pytest.mark.parametrize(
    ("setting", "tried"),
    [
        ("", ("bubblewrap", "landlock")),
        ("auto", ("bubblewrap", "landlock")),
        ("Bubblewrap", ("bubblewrap",)),
        ("landlock", ("landlock",)),
        ("none", ()),
        ("landlok", ()),  # unknown: nothing (the startup warning names the value)
    ],
)
def test_backend_setting(monkeypatch: pytest.MonkeyPatch, setting: str, tried: tuple[str]) -> None:
    monkeypatch.setenv("APPSERVER_SANDBOX_BACKEND", setting)
    assert sandbox.candidates() == tried
    if not tried:
        assert sandbox.backend() is None
        assert sandbox.enforcement({"type": "readOnly"}) == "approval"
    assert sandbox.enforcement({"type": "dangerFullAccess"}) == "none"


def test_protected_paths(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / ".git" / "hooks").mkdir(parents=True)
    (root / ".agents").mkdir()
    (root / "src" / ".git").mkdir(parents=True)  # not at the top: not protected
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / ".git").write_text(f"gitdir: {root / '.git' / 'worktrees' / 'wt'}\n")
    (root / ".git" / "worktrees" / "wt").mkdir(parents=True)
    got = protected_paths([root.resolve(), wt.resolve()])
    # The worktree's gitdir lies inside root/.git, already listed.
    assert got == [(root / ".git").resolve(), (root / ".agents").resolve(), (wt / ".git").resolve()]
    policy = workspace(root, excludeSlashTmp=True, excludeTmpdirEnvVar=True)
    for rel in (".git/hooks/pre-commit", ".git/config", ".git", ".agents/x"):
        assert not is_path_writable(rel, policy, root), rel
    for rel in ("src/.git/x", ".codex/config.toml", "src/a.py", ".gitignore"):
        assert is_path_writable(rel, policy, root), rel  # .codex does not exist here


def test_landlock_write_grants(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / ".git").mkdir(parents=True)
    (root / "src" / "deep").mkdir(parents=True)
    (root / "top.txt").write_text("x")
    (root / "link").symlink_to(tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    grants = set(confine.landlock_write_grants((str(root), str(other)), (str(root / ".git"),)))
    # ws holds .git: its entries are granted one by one (not .git, not the symlink).
    assert grants == {(str(root / "src"), True), (str(root / "top.txt"), False), (str(other), True)}
    nested = set(confine.landlock_write_grants((str(root),), (str(root / "src" / "deep"),)))
    assert (str(root / "src"), True) not in nested
    assert (str(root / ".git"), True) in nested and (str(root / "top.txt"), False) in nested
    assert not list(confine.landlock_write_grants((str(root / ".git"),), (str(root / ".git"),)))


def test_confinement_json_round_trip_and_rejects() -> None:
    spec = confine.Confinement(("/ws",), ("/ws/.git",), False, True, confine.Limits(10, 20))
    assert confine.Confinement.from_json(spec.to_json()) == spec
    for bad in ("{}", '{"writable": ["rel"], "protected": [], "network": false, '
                '"landlock": true, "limits": {"processes": 1, "fileSize": 1}}'):  # fmt: skip
        with pytest.raises(ValueError):
            confine.Confinement.from_json(bad)


def test_launcher_refuses_to_run_unconfined(tmp_path: Path) -> None:
    # A confinement that cannot be applied: the command must not run at all.
    argv = sandbox.launcher_argv(
        confine.Confinement(("/",), (), False, True, confine.Limits(10, 20)), []
    )
    argv[-2] = "not json"
    marker = tmp_path / "ran"
    done = run([*argv, "touch", str(marker)])
    assert done.returncode == 126 and "not running it" in done.stderr
    assert not marker.exists()


@NEEDS_BWRAP
def test_wrap_command_argv_shape(tmp_path: Path) -> None:
    argv = wrap_command(["echo", "hi"], workspace(tmp_path), tmp_path, using="bubblewrap")
    assert argv is not None
    assert argv[-3:] == ["--", "echo", "hi"]
    joined = " ".join(argv)
    assert "--ro-bind / /" in joined
    assert f"--bind {tmp_path.resolve()} {tmp_path.resolve()}" in joined
    assert "--unshare-net" in argv and "--die-with-parent" in argv and "--new-session" in argv
    # Root or not: a user namespace with no capabilities in it.
    assert "--unshare-user" in argv and "--cap-drop ALL" in joined
    assert argv[argv.index("--chdir") + 1] == str(tmp_path)
    net = wrap_command(
        ["true"], {"type": "readOnly", "networkAccess": True}, tmp_path, using="bubblewrap"
    )
    assert net is not None and "--unshare-net" not in net and "--bind" not in net


READ_ONLY: dict[str, Any] = {"type": "readOnly", "networkAccess": False}


def run(argv: list[str] | None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert argv is not None
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False, cwd=cwd)


def confined(
    backend: Backend, command: str, policy: dict[str, Any], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return run(wrap_command(["bash", "-c", command], policy, cwd, using=backend), cwd=cwd)


@pytest.mark.parametrize("backend", BACKENDS)
def test_workspace_write_enforced(backend: Backend, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    policy = workspace(root, excludeSlashTmp=True, excludeTmpdirEnvVar=True)
    inside = confined(backend, "echo ok > inside.txt", policy, root)
    assert inside.returncode == 0, inside.stderr
    assert (root / "inside.txt").read_text() == "ok\n"
    blocked = confined(backend, f"echo no > {outside}/x.txt", policy, root)
    assert blocked.returncode != 0
    assert not (outside / "x.txt").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_only_enforced(backend: Backend, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("data\n")
    policy = {"type": "readOnly", "networkAccess": False}
    read = confined(backend, "cat f.txt", policy, tmp_path)
    assert read.returncode == 0 and read.stdout == "data\n"
    write = confined(backend, "echo x > g.txt", policy, tmp_path)
    assert write.returncode != 0
    assert not (tmp_path / "g.txt").exists()
    assert confined(backend, "echo x > /dev/null", policy, tmp_path).returncode == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_git_and_agent_dirs_stay_read_only(backend: Backend, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    (root / ".git" / "hooks").mkdir(parents=True)
    (root / ".git" / "config").write_text("[core]\n")
    (root / ".codex").mkdir()
    (root / "src").mkdir()
    (root / "top.txt").write_text("top\n")
    before = sorted(p.name for p in (root / ".git").rglob("*"))
    policy = workspace(root, excludeSlashTmp=True, excludeTmpdirEnvVar=True)
    for attempt in (
        "echo '#!/bin/sh' > .git/hooks/pre-commit",
        "echo '[core] fsmonitor = evil' >> .git/config",
        "mv .git .git-old",
        "rm -rf .git",
        "touch .codex/config.toml",
    ):
        assert confined(backend, attempt, policy, root).returncode != 0, attempt
    assert sorted(p.name for p in (root / ".git").rglob("*")) == before
    assert (root / ".git" / "config").read_text() == "[core]\n"
    assert not (root / ".codex" / "config.toml").exists()
    ok = confined(backend, "echo more >> top.txt && touch src/new.py", policy, root)
    assert ok.returncode == 0, ok.stderr
    assert (root / "top.txt").read_text() == "top\nmore\n" and (root / "src" / "new.py").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_capabilities_inside(backend: Backend, tmp_path: Path) -> None:
    done = confined(backend, "grep -E '^Cap(Eff|Prm|Amb)' /proc/self/status", READ_ONLY, tmp_path)
    assert done.returncode == 0, done.stderr
    assert [line.split()[1] for line in done.stdout.splitlines()] == ["0000000000000000"] * 3


@AS_ROOT
@pytest.mark.parametrize("backend", BACKENDS)
def test_root_server_command_stays_confined(backend: Backend, tmp_path: Path) -> None:
    # The escape: a root server's "read-only" command remounting / read-write.
    root = tmp_path / "ws"
    outside = tmp_path / "outside"
    (root / ".git" / "hooks").mkdir(parents=True)
    outside.mkdir()
    policy = workspace(root, excludeSlashTmp=True, excludeTmpdirEnvVar=True)
    for attempt in (
        "mount -o remount,rw /",
        f"mount -o remount,rw / ; touch {outside}/after-remount",
        f"touch {outside}/x",
        "touch /etc/appserver-sandbox-probe",
        "touch .git/hooks/x",
        "unshare -Ur true",
        "chown nobody src 2>&1; mknod dev c 1 3",
    ):
        assert confined(backend, attempt, policy, root).returncode != 0, attempt
    assert list(outside.iterdir()) == [] and list((root / ".git" / "hooks").iterdir()) == []
    assert not Path("/etc/appserver-sandbox-probe").exists()
    (root / "src").mkdir()
    assert confined(backend, "touch src/made", policy, root).returncode == 0
    assert (root / "src" / "made").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_network_sockets_need_network_access(backend: Backend, tmp_path: Path) -> None:
    probe = (
        f"{sys.executable} -I -c 'import socket; socket.socket(socket.AF_UNIX).close(); "
        "socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).close(); "
        'socket.socket(socket.AF_INET).close(); print("sockets")\''
    )
    denied = confined(backend, probe, READ_ONLY, tmp_path)
    assert denied.returncode != 0 and "Operation not permitted" in denied.stderr, denied.stderr
    allowed = confined(backend, probe, {"type": "readOnly", "networkAccess": True}, tmp_path)
    assert allowed.returncode == 0 and allowed.stdout == "sockets\n", allowed.stderr


@pytest.mark.parametrize("backend", BACKENDS)
def test_limits_hold_inside(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APPSERVER_SANDBOX_MAX_PROCESSES", "321")
    monkeypatch.setenv("APPSERVER_SANDBOX_MAX_FILE_SIZE", str(1 << 20))
    policy = workspace(tmp_path, excludeSlashTmp=True, excludeTmpdirEnvVar=True)
    shown = confined(backend, "ulimit -u; ulimit -f; ulimit -c", policy, tmp_path)
    assert shown.stdout.split() == ["321", "1024", "0"], shown.stderr  # -f counts 1 KiB blocks
    big = confined(backend, "head -c 2000000 /dev/zero > big", policy, tmp_path)
    assert big.returncode != 0
    assert (tmp_path / "big").stat().st_size == 1 << 20  # cut at the limit
    small = confined(backend, "head -c 1000 /dev/zero > small", policy, tmp_path)
    assert small.returncode == 0


SETPRIV = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


def _nobody_can_run_python() -> bool:
    if os.geteuid() != 0 or shutil.which("setpriv") is None or SYSTEM_PYTHON is None:
        return False
    for python, code in ((sys.executable, "import landlockpy, seccompy"), (SYSTEM_PYTHON, "")):
        cmd = [*SETPRIV, python, "-I", "-c", code]
        if subprocess.run(cmd, check=False, timeout=30, cwd="/").returncode != 0:
            return False
    return True


@pytest.mark.skipif(
    not _nobody_can_run_python(),
    reason="needs root, setpriv and Pythons that uid 65534 can start",
)
# Landlock only: under bubblewrap the launcher starts after bwrap has dropped setpriv's
# capabilities, and this machine's Python may not be executable by a bare uid 65534.
@pytest.mark.parametrize("backend", [_backend_param("landlock")])
def test_process_limit_holds_for_a_non_root_server(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The kernel exempts uid 0 from RLIMIT_NPROC, so this runs the sandbox as uid 65534, as
    # the Docker image's server (uid 10001) would. setpriv leaves it root's capabilities,
    # which the sandbox drops before the command runs.
    assert SYSTEM_PYTHON is not None
    monkeypatch.setenv("APPSERVER_SANDBOX_MAX_PROCESSES", "30")
    forks = (
        "import os\nr, w = os.pipe()\nn = 0\nfor _ in range(100):\n"
        "    try:\n        pid = os.fork()\n    except BlockingIOError:\n        break\n"
        "    if pid == 0:\n        os.close(w); os.read(r, 1); os._exit(0)\n"
        "    n += 1\nprint(n)\nos.close(w)\n"
    )
    top = Path("/")  # every parent of tmp_path may be closed to uid 65534
    argv = wrap_command([SYSTEM_PYTHON, "-I", "-c", forks], READ_ONLY, top, using=backend)
    assert argv is not None
    done = run([*SETPRIV, *argv], cwd=top)
    assert done.returncode == 0, done.stderr
    assert 0 < int(done.stdout) < 30


@NEEDS_BWRAP
def test_bwrap_no_network(tmp_path: Path) -> None:
    # /proc/net/dev lists the reader's network namespace: a fresh one has only loopback.
    def interfaces(policy: dict[str, Any]) -> set[str]:
        proc = run(wrap_command(["cat", "/proc/net/dev"], policy, tmp_path, using="bubblewrap"))
        assert proc.returncode == 0, proc.stderr
        return {line.split(":")[0].strip() for line in proc.stdout.splitlines() if ":" in line}

    assert interfaces({"type": "readOnly", "networkAccess": False}) == {"lo"}
    with open("/proc/net/dev") as fh:
        host = {line.split(":")[0].strip() for line in fh if ":" in line}
    assert interfaces({"type": "readOnly", "networkAccess": True}) == host
