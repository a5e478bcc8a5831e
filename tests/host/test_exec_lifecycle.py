"""A ``command/exec`` process group dies with its connection and with the server; the
boundary's decisions per transport; ``[host_api]`` checked at startup."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil
import pytest

from appserver.host.boundary import Boundary, HostApiConfig, HostConfigError
from appserver.server.app import App
from appserver.server.config import ConfigError, LoadedConfig
from tests.harness import TIMEOUT, WireClient, open_client
from tests.host.support import authenticated_ws_client, host_overrides

FULL = {"type": "dangerFullAccess"}


async def _started_pids(c: WireClient, pidfile: Path) -> list[int]:
    """Start a command whose shell and background child record their pids, and wait for
    its first output (written after both)."""
    script = f"sleep 300 & echo $! > {pidfile}.child; echo $$ > {pidfile}; echo ready; wait"
    await c.send(
        {
            "id": "long",
            "method": "command/exec",
            "params": {
                "command": ["sh", "-c", script],
                "processId": "long",
                "streamStdoutStderr": True,
                "disableTimeout": True,
                "sandboxPolicy": FULL,
            },
        }
    )
    await c.notification("command/exec/outputDelta")
    return [int(pidfile.read_text()), int(Path(f"{pidfile}.child").read_text())]


def _gone(pids: list[int]) -> None:
    for pid in pids:
        try:
            proc = psutil.Process(pid)
        except psutil.NoSuchProcess:
            continue
        try:
            proc.wait(timeout=TIMEOUT)
        except psutil.TimeoutExpired:
            if proc.status() != psutil.STATUS_ZOMBIE:
                raise


async def test_connection_close_kills_the_group(home: Path, tmp_path: Path) -> None:
    async with authenticated_ws_client(home, host_overrides(None, True)) as c:
        pids = await _started_pids(c, tmp_path / "pid")
        await c.close()
        await asyncio.to_thread(_gone, pids)


async def test_server_stop_kills_the_group(home: Path, tmp_path: Path) -> None:
    async with open_client("in_process", home) as c:
        pids = await _started_pids(c, tmp_path / "pid")
    await asyncio.to_thread(_gone, pids)


class _Conn:
    def __init__(self, origin: str, authenticated: bool) -> None:
        self.origin = origin
        self.authenticated = authenticated


def test_boundary_by_transport(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    thread_cwd = tmp_path / "t"
    boundary = Boundary(HostApiConfig(roots=(str(root),)), lambda: [str(thread_cwd)])
    for origin in ("stdio", "unixSocket", "inProcess"):
        assert boundary.access(_Conn(origin, False)).unrestricted
    with pytest.raises(Exception) as refused:
        boundary.access(_Conn("webSocket", False))
    assert getattr(refused.value, "data", None) == {"reason": "unauthenticated"}
    limited = boundary.access(_Conn("webSocket", True))
    assert not limited.unrestricted
    assert limited.roots == (str(root.resolve()), str(thread_cwd.resolve()))
    assert limited.allows(str(root.resolve() / "x")) and not limited.allows(str(tmp_path))
    assert not limited.allows(str(root.resolve()) + "-sibling")
    opened = Boundary(HostApiConfig(unrestricted=True)).access(_Conn("webSocket", True))
    assert opened.unrestricted
    only = Boundary(HostApiConfig(roots=(str(root),), thread_roots=False), lambda: ["/"])
    assert only.access(_Conn("webSocket", True)).roots == (str(root.resolve()),)


@pytest.mark.parametrize(
    "table",
    [
        {"host_api": "yes"},
        {"host_api": {"roots": "/x"}},
        {"host_api": {"roots": ["relative"]}},
        {"host_api": {"unrestricted": "true"}},
    ],
)
def test_bad_host_api_config_refuses_to_start(tmp_path: Path, table: dict[str, object]) -> None:
    with pytest.raises(HostConfigError):
        HostApiConfig.from_config(table)
    with pytest.raises(ConfigError, match="host_api"):
        App(LoadedConfig(home=tmp_path, path=tmp_path / "config.toml", values=table))
