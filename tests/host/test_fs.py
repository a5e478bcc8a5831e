"""``fs/*`` over every transport (the WebSocket one authenticated and limited to a root):
shapes and errors as the schema and the reference's observed replies."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from tests.host.support import HOST_TRANSPORTS, error_of, host_client


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(params=HOST_TRANSPORTS)
def host_transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def work(tmp_path: Path) -> Path:
    w = tmp_path / "work"
    w.mkdir()
    return w


async def test_files_round_trip(host_transport: str, home: Path, work: Path) -> None:
    async with host_client(host_transport, home, roots=[work]) as c:
        f = work / "notes.txt"
        assert await c.call("fs/writeFile", {"path": str(f), "dataBase64": b64(b"one\0two")}) == {}
        assert f.read_bytes() == b"one\0two"
        got = await c.call("fs/readFile", {"path": str(f)})
        assert got == {"dataBase64": b64(b"one\0two")}
        # Atomic replace keeps the file's mode and leaves no temporary file behind.
        f.chmod(0o640)
        await c.call("fs/writeFile", {"path": str(f), "dataBase64": b64(b"new")})
        assert f.read_bytes() == b"new" and (f.stat().st_mode & 0o777) == 0o640
        assert sorted(os.listdir(work)) == ["notes.txt"]

        meta = await c.call("fs/getMetadata", {"path": str(f)})
        assert set(meta) == {"isDirectory", "isFile", "isSymlink", "createdAtMs", "modifiedAtMs"}
        assert meta["isFile"] and not meta["isDirectory"] and not meta["isSymlink"]
        assert meta["createdAtMs"] == 0 and meta["modifiedAtMs"] > 0
        (work / "link").symlink_to(f)
        link_meta = await c.call("fs/getMetadata", {"path": str(work / "link")})
        assert link_meta["isSymlink"] and link_meta["isFile"]

        assert await c.call("fs/createDirectory", {"path": str(work / "a" / "b")}) == {}
        assert (work / "a" / "b").is_dir()
        err = error_of(
            await c.request(
                "fs/createDirectory", {"path": str(work / "x" / "y"), "recursive": False}
            )
        )
        assert err["code"] == -32603 and err["message"].endswith("(os error 2)")

        listing = await c.call("fs/readDirectory", {"path": str(work)})
        names = {e["fileName"]: e for e in listing["entries"]}
        assert set(names) == {"notes.txt", "link", "a"}
        assert names["a"] == {"fileName": "a", "isDirectory": True, "isFile": False}
        assert names["notes.txt"]["isFile"]


async def test_copy_remove_and_errors(host_transport: str, home: Path, work: Path) -> None:
    async with host_client(host_transport, home, roots=[work]) as c:
        tree = work / "tree"
        (tree / "sub").mkdir(parents=True)
        (tree / "sub" / "f.txt").write_text("deep")
        (tree / "top.txt").write_text("top")
        err = error_of(
            await c.request(
                "fs/copy", {"sourcePath": str(tree), "destinationPath": str(work / "copy")}
            )
        )
        assert err["code"] == -32600
        await c.call(
            "fs/copy",
            {"sourcePath": str(tree), "destinationPath": str(work / "copy"), "recursive": True},
        )
        assert (work / "copy" / "sub" / "f.txt").read_text() == "deep"
        await c.call(
            "fs/copy",
            {"sourcePath": str(tree / "top.txt"), "destinationPath": str(work / "top2.txt")},
        )
        assert (work / "top2.txt").read_text() == "top"

        assert await c.call("fs/remove", {"path": str(work / "copy")}) == {}
        assert not (work / "copy").exists()
        # Missing: fine by default (force), an OS error with force false.
        assert await c.call("fs/remove", {"path": str(work / "copy")}) == {}
        err = error_of(await c.request("fs/remove", {"path": str(work / "copy"), "force": False}))
        assert err["code"] == -32603 and "No such file or directory" in err["message"]
        err = error_of(
            await c.request("fs/remove", {"path": str(tree), "recursive": False, "force": False})
        )
        assert err["code"] == -32603 and tree.exists()

        err = error_of(await c.request("fs/readFile", {"path": str(work / "missing")}))
        assert err == {"code": -32603, "message": "No such file or directory (os error 2)"}
        err = error_of(await c.request("fs/readFile", {"path": "relative/path.txt"}))
        assert err["code"] == -32600
        err = error_of(
            await c.request("fs/writeFile", {"path": str(work / "f"), "dataBase64": "%%%"})
        )
        assert err["code"] == -32600
        err = error_of(await c.request("fs/readFile", {}))
        assert err["code"] == -32600 and "path" in err["message"]


async def test_watch_reports_changes(host_transport: str, home: Path, work: Path) -> None:
    async with host_client(host_transport, home, roots=[work]) as c:
        reply = await c.call("fs/watch", {"path": str(work), "watchId": "w1"})
        assert reply == {"path": str(work.resolve())}
        err = error_of(await c.request("fs/watch", {"path": str(work), "watchId": "w1"}))
        assert err["code"] == -32600
        (work / "created.txt").write_text("x")
        note = await c.notification("fs/changed")
        assert note["params"]["watchId"] == "w1"
        assert str(work.resolve() / "created.txt") in note["params"]["changedPaths"]
        assert await c.call("fs/unwatch", {"watchId": "w1"}) == {}
        err = error_of(await c.request("fs/watch", {"path": str(work / "nope"), "watchId": "w2"}))
        assert err["code"] == -32603
