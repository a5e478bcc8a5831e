"""``thread/shellCommand`` (the user's ``!cmd``) over every transport: ``{}`` at once, then a
turn of its own holding a ``commandExecution`` item with ``source: "userShell"``, its output
streamed, recorded in the thread (``thread/read``), and seen by the model next turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.host.support import HOST_TRANSPORTS, error_of, host_client


@pytest.fixture(params=HOST_TRANSPORTS)
def host_transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_shell_command_is_a_recorded_turn(
    host_transport: str, home: Path, tmp_path: Path
) -> None:
    async with host_client(host_transport, home, unrestricted=True) as c:
        started = await c.call("thread/start", {"cwd": str(tmp_path)})
        thread_id = started["thread"]["id"]
        reply = await c.call(
            "thread/shellCommand", {"threadId": thread_id, "command": "echo hi | tr a-z A-Z; pwd"}
        )
        assert reply == {}
        item_started = await c.notification("item/started")
        item = item_started["params"]["item"]
        assert item["type"] == "commandExecution" and item["source"] == "userShell"
        assert item["status"] == "inProgress" and item["cwd"] == str(tmp_path)
        delta = await c.notification("item/commandExecution/outputDelta")
        assert delta["params"]["itemId"] == item["id"]
        completed = await c.notification("item/completed")
        done = completed["params"]["item"]
        assert done["status"] == "completed" and done["exitCode"] == 0
        assert done["aggregatedOutput"] == f"HI\n{tmp_path}\n"
        turn = await c.notification("turn/completed")
        assert turn["params"]["turn"]["status"] == "completed"

        read = await c.call("thread/read", {"threadId": thread_id, "includeTurns": True})
        items = [i for t in read["thread"]["turns"] for i in t["items"]]
        assert any(i.get("source") == "userShell" and i["exitCode"] == 0 for i in items)

        failing = {"threadId": thread_id, "command": "sleep 5", "timeoutMs": 0}
        assert await c.call("thread/shellCommand", failing) == {}
        completed = await c.notification("item/completed")
        assert completed["params"]["item"]["status"] == "failed"
        assert completed["params"]["item"]["exitCode"] == 124
        await c.notification("turn/completed")

        err = error_of(
            await c.request("thread/shellCommand", {"threadId": thread_id, "command": " "})
        )
        assert err["code"] == -32600
