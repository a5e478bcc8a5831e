"""History paging as the TUI and codex-acp do it after a resume, over all three transports:
``thread/resume`` carries ``historyMode: "paginated"`` and backwards cursors for turns and
items; ``thread/items/list`` pages every item across turns (``desc`` newest first, ``asc``
oldest first), its backwards cursor includes its anchor, a turn filter and an item anchor
work, and bad cursors are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, run_turn, start_thread
from tests.harness import open_client
from tests.support import mock_model as mm


async def test_items_list_and_resume_cursors(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("first answer"), mm.sse_text("second answer", item_id="msg_2"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        for method in ("thread/items/list", "thread/turns/list"):
            early = await c.request(method, {"threadId": tid})
            assert "not materialized yet" in early["error"]["message"], method
        turns = []
        for text in ("one", "two"):
            turns.append(await run_turn(c, tid, text))
            await completed_turn(c)
    async with open_client(transport, home, env=ENV) as c:  # after a restart
        resumed = await c.call("thread/resume", {"threadId": tid, "excludeTurns": True})
        assert resumed["thread"]["historyMode"] == "paginated"
        assert resumed["thread"]["turns"] == [] and resumed["initialTurnsPage"] is None
        newest_turns = await c.call(
            "thread/turns/list",
            {
                "threadId": tid,
                "cursor": resumed["turnsBackwardsCursor"],
                "sortDirection": "desc",
                "itemsView": "notLoaded",
            },
        )
        assert [t["id"] for t in newest_turns["data"]] == turns[::-1]
        # The newest item first, then the rest, one at a time.
        page = await c.call(
            "thread/items/list",
            {
                "threadId": tid,
                "turnId": None,
                "cursor": resumed["itemsBackwardsCursor"],
                "limit": 1,
                "sortDirection": "desc",
            },
        )
        entry = page["data"][0]
        assert entry["turnId"] == turns[1] and entry["item"]["text"] == "second answer"
        assert isinstance(entry["completedAtMs"], int) and entry["startedAtMs"] is None
        seen = [entry]
        while page["nextCursor"] is not None:
            page = await c.call(
                "thread/items/list",
                {
                    "threadId": tid,
                    "cursor": page["nextCursor"],
                    "limit": 1,
                    "sortDirection": "desc",
                },
            )
            seen.extend(page["data"])
        kinds = [(e["turnId"], e["item"]["type"]) for e in reversed(seen)]
        assert kinds == [
            (turns[0], "userMessage"),
            (turns[0], "agentMessage"),
            (turns[1], "userMessage"),
            (turns[1], "agentMessage"),
        ]
        everything = await c.call("thread/items/list", {"threadId": tid, "limit": 100})
        assert everything["data"] == seen[::-1] and everything["nextCursor"] is None
        # A backwards cursor includes its anchor: reversed, the page starts with it again.
        back = await c.call(
            "thread/items/list",
            {"threadId": tid, "cursor": everything["backwardsCursor"], "sortDirection": "desc"},
        )
        assert back["data"] == [everything["data"][0]]
        one_turn = await c.call("thread/items/list", {"threadId": tid, "turnId": turns[0]})
        assert [e["item"]["type"] for e in one_turn["data"]] == ["userMessage", "agentMessage"]
        user_item = one_turn["data"][0]["item"]["id"]
        after = await c.call(
            "thread/items/list",
            {"threadId": tid, "turnId": turns[0], "cursor": {"type": "item", "itemId": user_item}},
        )
        assert [e["item"]["type"] for e in after["data"]] == ["agentMessage"]
        for params in (
            {"cursor": "bm90LWEtY3Vyc29y"},
            {"cursor": "%%%"},
            {"cursor": {"type": "item", "itemId": user_item}},
            {"turnId": "no-such-turn"},
        ):
            reply = await c.request("thread/items/list", {"threadId": tid, **params})
            assert reply["error"]["code"] == -32600, params
        missing = "00000000-0000-7000-8000-000000000000"
        reply = await c.request("thread/items/list", {"threadId": missing})
        assert reply["error"]["code"] == -32600


async def test_ephemeral_thread_has_no_history_pages(transport: str, home: Path) -> None:
    async with open_client(transport, home) as c:
        tid = await start_thread(c, home, ephemeral=True)
        for method in ("thread/items/list", "thread/turns/list"):
            reply = await c.request(method, {"threadId": tid})
            assert "ephemeral" in reply["error"]["message"], method
