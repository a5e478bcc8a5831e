"""Every way out of the host roots, tried over an authenticated WebSocket connection limited
to one root (``[host_api] roots``): ``..``, absolute paths, symbolic links in any component
(and created during the calls), ``/proc/self/root``, hard links, very long paths, NUL bytes;
plus the unauthenticated WebSocket, refused outright, and commands, refused to a limited
connection. Nothing outside the root may be read, listed, written, created or removed."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import WireClient
from tests.host.support import authenticated_ws_client, error_of, host_overrides

SECRET = b"the secret outside the root"


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    (root / "inside.txt").write_text("inside")
    return root, outside


@contextlib.asynccontextmanager
async def limited(home: Path, root: Path) -> AsyncIterator[WireClient]:
    async with authenticated_ws_client(home, host_overrides([root], False)) as c:
        yield c


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def refused(c: WireClient, method: str, params: dict[str, Any]) -> dict[str, Any]:
    err = error_of(await c.request(method, params))
    assert err["code"] == -32600, (method, params, err)
    assert SECRET.decode() not in err["message"]
    return err


async def assert_no_access(c: WireClient, path: str, outside: Path) -> None:
    """Every fs method on ``path`` is refused; nothing under ``outside`` changed."""
    before = sorted(os.listdir(outside))
    await refused(c, "fs/readFile", {"path": path})
    await refused(c, "fs/getMetadata", {"path": path})
    await refused(c, "fs/readDirectory", {"path": path})
    await refused(c, "fs/writeFile", {"path": path, "dataBase64": b64(b"x")})
    await refused(c, "fs/writeFile", {"path": path + "/new.txt", "dataBase64": b64(b"x")})
    await refused(c, "fs/createDirectory", {"path": path + "/newdir"})
    await refused(c, "fs/watch", {"path": path, "watchId": "w"})
    await refused(c, "fuzzyFileSearch", {"query": "secret", "roots": [path]})
    await refused(c, "fs/copy", {"sourcePath": path, "destinationPath": path + ".copy"})
    assert sorted(os.listdir(outside)) == before
    assert (outside / "secret.txt").read_bytes() == SECRET


async def test_dotdot_absolute_and_proc_root(home: Path, layout: tuple[Path, Path]) -> None:
    root, outside = layout
    async with limited(home, root) as c:
        assert (await c.call("fs/readFile", {"path": str(root / "inside.txt")})) == {
            "dataBase64": b64(b"inside")
        }
        for path in (
            f"{root}/../outside",
            f"{root}/../outside/secret.txt",
            str(outside),
            str(outside / "secret.txt"),
            f"/proc/self/root{outside}/secret.txt",
            f"/proc/self/root{root}/../outside",
            f"/proc/self/cwd/../../{outside}",
            "/etc/passwd",
            "/",
        ):
            await assert_no_access(c, path, outside)
        err = await refused(c, "fs/remove", {"path": str(outside / "secret.txt")})
        assert err["data"]["reason"] == "outsideHostRoots"
        await refused(
            c,
            "fs/copy",
            {"sourcePath": str(root / "inside.txt"), "destinationPath": str(outside / "x")},
        )
        await refused(
            c,
            "fs/copy",
            {"sourcePath": str(outside / "secret.txt"), "destinationPath": str(root / "x")},
        )
        assert not (root / "x").exists() and not (outside / "x").exists()


async def test_symlinks_in_every_component(home: Path, layout: tuple[Path, Path]) -> None:
    root, outside = layout
    (root / "dirlink").symlink_to(outside)  # a directory component
    (root / "filelink").symlink_to(outside / "secret.txt")  # the last component
    (root / "sub").mkdir()
    (root / "sub" / "deep").symlink_to("../../outside")  # relative, deeper
    (root / "dangling").symlink_to(outside / "not-yet.txt")
    async with limited(home, root) as c:
        for path in (
            str(root / "dirlink"),
            str(root / "dirlink" / "secret.txt"),
            str(root / "filelink"),
            str(root / "sub" / "deep" / "secret.txt"),
            str(root / "sub" / "deep"),
            str(root / "dangling"),
        ):
            await assert_no_access(c, path, outside)
        assert not (outside / "not-yet.txt").exists()
        # Listing the root does not reveal what a link points at.
        listing = await c.call("fs/readDirectory", {"path": str(root)})
        entries = {e["fileName"]: e for e in listing["entries"]}
        assert entries["dirlink"] == {"fileName": "dirlink", "isDirectory": False, "isFile": False}
        # The fuzzy search lists the root without descending through a link.
        found = await c.call("fuzzyFileSearch", {"query": "secret", "roots": [str(root)]})
        assert all("secret" not in f["path"] for f in found["files"])
        # Removing a link removes the link, never its target.
        assert await c.call("fs/remove", {"path": str(root / "dirlink")}) == {}
        assert not (root / "dirlink").exists()
        assert (outside / "secret.txt").read_bytes() == SECRET
        # A link's own metadata is allowed only when its target is inside too.
        (root / "ok").symlink_to(root / "inside.txt")
        meta = await c.call("fs/getMetadata", {"path": str(root / "ok")})
        assert meta["isSymlink"] and meta["isFile"]


async def test_hard_link_out_of_the_root(home: Path, layout: tuple[Path, Path]) -> None:
    root, outside = layout
    os.link(outside / "secret.txt", root / "hard.txt")
    async with limited(home, root) as c:
        err = await refused(c, "fs/readFile", {"path": str(root / "hard.txt")})
        assert err["data"]["reason"] == "hardLink"
        await refused(
            c,
            "fs/copy",
            {"sourcePath": str(root / "hard.txt"), "destinationPath": str(root / "copy.txt")},
        )
        assert not (root / "copy.txt").exists()
        # Writing replaces the link (a new file), never writes through to the outside file.
        await c.call("fs/writeFile", {"path": str(root / "hard.txt"), "dataBase64": b64(b"new")})
        assert (root / "hard.txt").read_bytes() == b"new"
        assert (outside / "secret.txt").read_bytes() == SECRET


async def test_long_paths_and_nul_bytes(home: Path, layout: tuple[Path, Path]) -> None:
    root, outside = layout
    async with limited(home, root) as c:
        long_component = str(root / ("a" * 300))
        err = error_of(await c.request("fs/readFile", {"path": long_component}))
        assert err["code"] == -32603 and "File name too long" in err["message"]
        deep = str(root) + "/" + "/".join(["d" * 200] * 30)  # ~6 KB, past PATH_MAX
        err = error_of(await c.request("fs/writeFile", {"path": deep, "dataBase64": b64(b"x")}))
        assert err["code"] == -32603
        # Walked one descriptor at a time, a path past PATH_MAX still works inside the root.
        assert await c.call("fs/createDirectory", {"path": deep}) == {}
        await c.call("fs/writeFile", {"path": deep + "/f", "dataBase64": b64(b"deep")})
        assert await c.call("fs/readFile", {"path": deep + "/f"}) == {"dataBase64": b64(b"deep")}
        huge = str(root) + "/" + "x/" * 40_000
        await refused(c, "fs/readFile", {"path": huge})
        escape = str(root) + "/" + "/".join(["sub"] * 500) + "/.." * 502 + "/outside/secret.txt"
        await refused(c, "fs/readFile", {"path": escape})
        for path in (f"{root}/inside.txt\0", f"{root}\0/../outside/secret.txt", "\0"):
            err = await refused(c, "fs/readFile", {"path": path})
            assert "NUL" in err["message"]
            await refused(c, "fs/writeFile", {"path": path, "dataBase64": b64(b"x")})
        assert sorted(os.listdir(outside)) == ["secret.txt"]


@contextlib.contextmanager
def flipping(link_place: Path, real_dir: Path, target: Path) -> Iterator[threading.Event]:
    """A thread that keeps swapping ``link_place`` between a real directory (holding
    ``inside.txt``) and a symbolic link to ``target``, until the block ends."""
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                os.rename(real_dir, link_place)  # the real directory in place
            tmp_link = link_place.with_name("tmp-link")
            with contextlib.suppress(OSError):
                tmp_link.unlink()
            with contextlib.suppress(OSError):
                os.symlink(target, tmp_link)
                os.rename(link_place, real_dir)  # the real directory out of the way
                os.rename(tmp_link, link_place)  # the link in place (atomic)
            with contextlib.suppress(OSError):
                link_place.unlink()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(10)


async def test_links_created_during_the_calls(home: Path, layout: tuple[Path, Path]) -> None:
    """A directory swapped for a link to the outside while requests run: every request
    either works inside the root or fails; none reads the secret or writes outside."""
    root, outside = layout
    place = root / "flip"
    parked = root / "parked"
    parked.mkdir()
    (parked / "secret.txt").write_text("inside copy")
    async with limited(home, root) as c:
        with flipping(place, parked, outside):
            for i in range(150):
                path = str(place / "secret.txt")
                reply = await c.request("fs/readFile", {"path": path})
                if "result" in reply:
                    assert base64.b64decode(reply["result"]["dataBase64"]) != SECRET
                await c.request(
                    "fs/writeFile", {"path": str(place / f"w{i}.txt"), "dataBase64": b64(b"x")}
                )
                await c.request("fs/createDirectory", {"path": str(place / f"d{i}")})
                await c.request("fs/remove", {"path": str(place / "secret.txt"), "force": True})
                await asyncio.sleep(0)
        assert sorted(os.listdir(outside)) == ["secret.txt"]
        assert (outside / "secret.txt").read_bytes() == SECRET


async def test_commands_refused_to_limited_connections(
    home: Path, layout: tuple[Path, Path]
) -> None:
    root, outside = layout
    async with limited(home, root) as c:
        for params in (
            {"command": ["cat", str(outside / "secret.txt")], "cwd": str(root)},
            {"command": ["true"], "sandboxPolicy": {"type": "readOnly"}, "cwd": str(root)},
            {"command": ["true"], "sandboxPolicy": {"type": "dangerFullAccess"}},
        ):
            err = await refused(c, "command/exec", params)
            assert err["data"]["reason"] == "outsideHostRoots"
        await refused(c, "command/exec/write", {"processId": "x", "closeStdin": True})
        await confined_shell(c, root, outside)


async def confined_shell(c: WireClient, root: Path, outside: Path) -> None:
    """``thread/shellCommand`` on a connection without full host access runs in the thread's
    own sandbox (read-only here): a write outside fails, as the agent's would."""
    started = await c.call("thread/start", {"cwd": str(root), "sandbox": "read-only"})
    thread_id = started["thread"]["id"]
    shell = {"threadId": thread_id, "command": f"echo x > {outside}/escape.txt"}
    reply = await c.request("thread/shellCommand", shell)
    if "error" in reply:  # no sandbox backend works on this machine: refused, never unconfined
        assert reply["error"]["data"] == {"reason": "sandboxUnavailable"}
    else:
        done = await c.notification("turn/completed")
        assert done["params"]["threadId"] == thread_id
        item = next(
            m["params"]["item"]
            for m in c.seen
            if m.get("method") == "item/completed"
            and m["params"]["item"]["type"] == "commandExecution"
        )
        assert item["source"] == "userShell"
        assert item["exitCode"] != 0
    assert not (outside / "escape.txt").exists()


async def test_unauthenticated_websocket_is_refused(home: Path, layout: tuple[Path, Path]) -> None:
    root, _ = layout
    overrides = host_overrides([root], unrestricted=True)
    async with authenticated_ws_client(home, overrides, token=None) as c:
        for method, params in (
            ("fs/readFile", {"path": str(root / "inside.txt")}),
            ("fs/writeFile", {"path": str(root / "new.txt"), "dataBase64": b64(b"x")}),
            ("fs/readDirectory", {"path": str(root)}),
            ("fs/watch", {"path": str(root), "watchId": "w"}),
            ("command/exec", {"command": ["true"]}),
            ("fuzzyFileSearch", {"query": "inside", "roots": [str(root)]}),
        ):
            err = await refused(c, method, params)
            assert err["data"] == {"reason": "unauthenticated"}
        assert not (root / "new.txt").exists()
        # The user's `!cmd` (the stock TUI ends its session when it is refused): confined.
        await confined_shell(c, root, layout[1])
