"""An over-long user input is refused before anything is recorded.

Covers, over every transport: ``turn/start`` whose text items together exceed 1,048,576
characters gets the reference's -32602 ``Input exceeds the maximum length of 1048576
characters.`` with ``data`` ``{input_error_code, max_chars, actual_chars}``, no turn starts,
and no file under the home holds the text; exactly the limit is accepted; ``turn/steer``
is held to the same limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from appserver.protocol.thread_params import MAX_USER_INPUT_TEXT_CHARS
from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, start_thread
from tests.harness import open_client
from tests.security.helpers import files_containing
from tests.support import mock_model as mm

MARKER = "OVERSIZED-INPUT-MARKER"


def _text(chars: int) -> str:
    return MARKER + "x" * (chars - len(MARKER))


async def test_oversized_input_is_refused(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    half = MAX_USER_INPUT_TEXT_CHARS // 2
    items = [{"type": "text", "text": _text(half)}, {"type": "text", "text": _text(half + 1)}]
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        reply = await c.request("turn/start", {"threadId": tid, "input": items})
        assert reply["error"] == {
            "code": -32602,
            "message": "Input exceeds the maximum length of 1048576 characters.",
            "data": {
                "input_error_code": "input_too_large",
                "max_chars": 1048576,
                "actual_chars": 1048577,
            },
        }
        thread = (await c.call("thread/read", {"threadId": tid}))["thread"]
        assert thread["status"] == {"type": "idle"}
    assert not files_containing(home, [MARKER])
    assert not model.requests


async def test_input_at_the_limit_and_steer(home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    reply_ = mm.sse_text("done")
    hold = reply_.hold_before(1)  # the turn stays active while we steer
    model.add(reply_)
    async with open_client("in_process", home, env=ENV) as c:
        tid = await start_thread(c, home)
        exact = [{"type": "text", "text": "y" * MAX_USER_INPUT_TEXT_CHARS}]
        started = await c.call("turn/start", {"threadId": tid, "input": exact})
        turn_id = started["turn"]["id"]
        steer = {
            "threadId": tid,
            "expectedTurnId": turn_id,
            "input": [{"type": "text", "text": _text(MAX_USER_INPUT_TEXT_CHARS + 5)}],
        }
        reply = await c.request("turn/steer", steer)
        assert reply["error"]["code"] == -32602
        assert reply["error"]["data"]["actual_chars"] == MAX_USER_INPUT_TEXT_CHARS + 5
        hold.release.set()
        assert (await completed_turn(c))["status"] == "completed"
    assert not files_containing(home, [MARKER])


@pytest.mark.parametrize("kind", ["image", "mention"])
def test_only_text_counts(kind: str) -> None:
    from appserver.protocol.thread_params import check_user_input

    item = {"type": kind, "url": "data:image/png;base64,AAAA", "name": "n", "path": "/p"}
    assert check_user_input([item])
