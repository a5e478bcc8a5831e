"""``command/exec`` and its follow-ups over every transport (the WebSocket one authenticated
and ``[host_api] unrestricted``): buffered and streamed output, stdin, PTY, resize,
terminate, timeout, output cap, the agent's sandbox and environment scrubbing."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from appserver.engine.tools import sandbox
from tests.harness import WireClient
from tests.host.support import HOST_TRANSPORTS, error_of, host_client

FULL = {"type": "dangerFullAccess"}


@pytest.fixture(params=HOST_TRANSPORTS)
def host_transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def deltas(c: WireClient, process_id: str) -> list[dict[str, Any]]:
    found = [
        m["params"]
        for m in c.buffer
        if m.get("method") == "command/exec/outputDelta" and m["params"]["processId"] == process_id
    ]
    c.buffer[:] = [m for m in c.buffer if m.get("params") not in found]
    return found


def joined(found: list[dict[str, Any]], stream: str) -> bytes:
    return b"".join(base64.b64decode(d["deltaBase64"]) for d in found if d["stream"] == stream)


async def test_buffered_streamed_and_errors(
    host_transport: str, home: Path, tmp_path: Path
) -> None:
    async with host_client(host_transport, home, unrestricted=True) as c:
        r = await c.call(
            "command/exec",
            {"command": ["sh", "-c", "echo out; echo err >&2; exit 3"], "sandboxPolicy": FULL},
        )
        assert r == {"exitCode": 3, "stdout": "out\n", "stderr": "err\n"}

        # Streamed: every delta arrives before the reply, whose buffers are then empty.
        r = await c.call(
            "command/exec",
            {
                "command": ["sh", "-c", "printf abc; printf xyz >&2"],
                "processId": "s1",
                "streamStdoutStderr": True,
                "sandboxPolicy": FULL,
                "cwd": str(tmp_path),
            },
        )
        assert r == {"exitCode": 0, "stdout": "", "stderr": ""}
        found = deltas(c, "s1")
        assert joined(found, "stdout") == b"abc" and joined(found, "stderr") == b"xyz"
        assert all(d["capReached"] is False for d in found)

        # Output cap: truncated, capReached on the last chunk of the stream.
        r = await c.call(
            "command/exec",
            {
                "command": ["sh", "-c", "head -c 100000 /dev/zero"],
                "processId": "cap",
                "streamStdoutStderr": True,
                "outputBytesCap": 10,
                "sandboxPolicy": FULL,
            },
        )
        found = deltas(c, "cap")
        assert joined(found, "stdout") == b"\0" * 10 and found[-1]["capReached"] is True

        # Timeout: 124 and the partial output kept.
        r = await c.call(
            "command/exec",
            {
                "command": ["sh", "-c", "echo early; sleep 30"],
                "timeoutMs": 300,
                "sandboxPolicy": FULL,
            },
        )
        assert r["exitCode"] == 124 and r["stdout"] == "early\n"

        for params in (
            {"command": []},
            {"command": ["true"], "tty": True},
            {"command": ["true"], "streamStdoutStderr": True},
            {"command": ["true"], "timeoutMs": 5, "disableTimeout": True},
            {"command": ["true"], "processId": "p", "size": {"rows": 1, "cols": 1}},
            {"command": ["true"], "sandboxPolicy": {"type": "bogus"}},
        ):
            assert error_of(await c.request("command/exec", params))["code"] == -32600, params
        err = error_of(await c.request("command/exec/terminate", {"processId": "nobody"}))
        assert err["code"] == -32600


async def test_stdin_pty_resize_terminate(host_transport: str, home: Path) -> None:
    async with host_client(host_transport, home, unrestricted=True) as c:
        await c.send(
            {
                "id": "cat",
                "method": "command/exec",
                "params": {
                    "command": ["cat"],
                    "processId": "cat",
                    "streamStdin": True,
                    "streamStdoutStderr": True,
                    "sandboxPolicy": FULL,
                },
            }
        )
        data = base64.b64encode(b"through stdin\n").decode()
        await c.call("command/exec/write", {"processId": "cat", "deltaBase64": data})
        await c.call("command/exec/write", {"processId": "cat", "closeStdin": True})
        r = await c.reply_to("cat")
        assert r["result"]["exitCode"] == 0
        assert joined(deltas(c, "cat"), "stdout") == b"through stdin\n"

        script = "read line; echo got $line; stty size; tty >/dev/null && echo is-a-tty"
        await c.send(
            {
                "id": "pty",
                "method": "command/exec",
                "params": {
                    "command": ["sh", "-c", script],
                    "processId": "pty",
                    "tty": True,
                    "size": {"rows": 30, "cols": 100},
                    "sandboxPolicy": FULL,
                },
            }
        )
        await c.call("command/exec/resize", {"processId": "pty", "size": {"rows": 12, "cols": 34}})
        hello = base64.b64encode(b"hello\n").decode()
        await c.call("command/exec/write", {"processId": "pty", "deltaBase64": hello})
        r = await c.reply_to("pty")
        assert r["result"]["exitCode"] == 0
        out = joined(deltas(c, "pty"), "stdout").replace(b"\r\n", b"\n")
        assert b"got hello\n" in out and b"12 34\n" in out and b"is-a-tty\n" in out

        await c.send(
            {
                "id": "long",
                "method": "command/exec",
                "params": {
                    "command": ["sh", "-c", "echo started; sleep 60"],
                    "processId": "long",
                    "streamStdoutStderr": True,
                    "disableTimeout": True,
                    "sandboxPolicy": FULL,
                },
            }
        )
        await c.wait_for(lambda m: m.get("method") == "command/exec/outputDelta")
        assert await c.call("command/exec/terminate", {"processId": "long"}) == {}
        r = await c.reply_to("long")
        assert r["result"]["exitCode"] == 128 + 15


async def test_sandbox_and_environment(host_transport: str, home: Path, tmp_path: Path) -> None:
    secrets = {"GITHUB_TOKEN": "ghp_" + "a" * 36, "MY_SERVICE_PASSWORD": "hunter2hunter2"}
    async with host_client(host_transport, home, unrestricted=True, env=secrets) as c:
        # Credentials are scrubbed as for the agent's commands; env overrides apply.
        script = 'echo "[$GITHUB_TOKEN][$MY_SERVICE_PASSWORD][$KEEP][${HOME-unset}]"'
        r = await c.call(
            "command/exec",
            {
                "command": ["sh", "-c", script],
                "env": {"KEEP": "kept", "HOME": None},
                "sandboxPolicy": FULL,
            },
        )
        assert r["stdout"] == "[][][kept][unset]\n"
        if sandbox.backend() is None:
            pytest.skip("no sandbox backend works here")
        outside = tmp_path / "outside.txt"
        policy = {"type": "workspaceWrite", "writableRoots": [], "excludeSlashTmp": True}
        r = await c.call(
            "command/exec",
            {
                "command": ["sh", "-c", f"touch {outside}"],
                "cwd": str(home),
                "sandboxPolicy": {**policy, "excludeTmpdirEnvVar": True},
            },
        )
        assert r["exitCode"] != 0 and not outside.exists()
