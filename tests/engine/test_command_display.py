"""How a command is shown: ``item/commandExecution/requestApproval.command`` and the
``commandExecution`` item carry the shell invocation really run, quoted as a shell reads it
back (the reference: ``/bin/bash -lc 'rm -f victim.txt && touch approved-marker.txt'``), while
``commandActions`` and the approval analysis read the inner script."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from appserver.client.render import shown_command
from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, next_request, run_turn, start_thread
from tests.harness import open_client
from tests.support import mock_model as mm

SCRIPT = "rm -f victim.txt && touch approved-marker.txt"


async def test_approval_and_item_show_the_invocation_run(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url, approval="untrusted", sandbox="danger-full-access")
    (home / "victim.txt").write_text("x")
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": SCRIPT}),
        mm.sse_text("done"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "go")
        req = await next_request(c)
        params = req["params"]
        argv = shlex.split(params["command"])
        assert argv[1:] == ["-c", SCRIPT] and Path(argv[0]).name in ("bash", "sh")
        assert params["command"] == shlex.join(argv)
        assert params["commandActions"] == [{"type": "unknown", "command": SCRIPT}]
        # A compound command: no prefix to approve (see the README's coverage notes).
        assert params["proposedExecpolicyAmendment"] is None
        await c.send({"id": req["id"], "result": {"decision": "accept"}})
        assert (await completed_turn(c))["status"] == "completed"
        items = [
            m["params"]["item"]
            for m in c.seen
            if m.get("method") in ("item/started", "item/completed")
            and m["params"]["item"]["type"] == "commandExecution"
        ]
        assert {i["command"] for i in items} == {params["command"]}
        assert items[-1]["exitCode"] == 0
    assert (home / "approved-marker.txt").exists() and not (home / "victim.txt").exists()


def test_chat_client_shows_the_script() -> None:
    assert shown_command(shlex.join(["bash", "-c", SCRIPT])) == SCRIPT
    assert shown_command("/bin/bash -lc 'ls -la'") == "ls -la"
    assert shown_command("ls 'unterminated") == "ls 'unterminated"
    assert shown_command("python -c 'print(1)'") == "python -c 'print(1)'"
