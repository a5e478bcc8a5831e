"""Thread sections and attachments over all three transports, against a real store: sections
created, renamed, listed and deleted; threads moved into, within and out of a section (with
``thread/section/changed``); ``thread/list`` by ``sectionId`` (absent, null, an id) and by
``sortKey: section_position``, as the TUI's first listing asks; the ``section`` of a listed
or read thread; attachments added (created, then existing), listed, found by identity across
threads, removed (with ``thread/attachment/updated``); and all of it still there after a
restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, run_turn, start_thread
from tests.harness import WireClient, open_client
from tests.support import mock_model as mm

# The section id the stock TUI lists at startup (clients/codex-tui-0.169.0.jsonl).
TUI_SECTION = "01984de2-8f74-7c91-a3b2-5c5e937cf318"


async def materialized_thread(c: WireClient, cwd: Path, text: str) -> str:
    tid = await start_thread(c, cwd)
    await run_turn(c, tid, text)
    assert (await completed_turn(c))["status"] == "completed"
    return tid


def tui_listing(section_id: str, **extra: Any) -> dict[str, Any]:
    """The TUI's first ``thread/list``, as captured."""
    return {
        "currentAccountOnly": True,
        "cursor": None,
        "limit": 100,
        "excludedThreadIds": None,
        "sortKey": "section_position",
        "sortDirection": None,
        "modelProviders": [],
        "sourceKinds": [],
        "originators": None,
        "archived": False,
        "sectionId": section_id,
        "cwd": None,
        "useStateDbOnly": True,
        "searchTerm": None,
        "parentThreadId": None,
        "ancestorThreadId": None,
        "attachedToThreadId": None,
        **extra,
    }


def ids(page: dict[str, Any]) -> list[str]:
    return [t["id"] for t in page["data"]]


async def test_sections_order_the_thread_list(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(*(mm.sse_text(f"reply {i}") for i in range(3)))
    async with open_client(transport, home, env=ENV) as c:
        a = await materialized_thread(c, home, "first")
        b = await materialized_thread(c, home, "second")
        t3 = await materialized_thread(c, home, "third")
        # As the reference: an unknown section lists nothing, and is no error.
        empty = await c.call("thread/list", tui_listing(TUI_SECTION))
        assert empty == {"data": [], "readStates": {}, "nextCursor": None, "backwardsCursor": None}

        created = await c.call(
            "threadSection/create", {"name": "Work", "appearance": {"color": "blue"}}
        )
        work = created["section"]
        assert work["name"] == "Work" and work["appearance"] == {"color": "blue", "icon": None}
        other = (await c.call("threadSection/create", {"name": "Other"}))["section"]
        listed = await c.call("threadSection/list", {})
        assert [s["id"] for s in listed["data"]] == [work["id"], other["id"]]
        page = await c.call("threadSection/list", {"limit": 1})
        assert len(page["data"]) == 1 and page["nextCursor"] is not None
        rest = await c.call("threadSection/list", {"cursor": page["nextCursor"]})
        assert [s["id"] for s in rest["data"]] == [other["id"]] and rest["nextCursor"] is None

        for tid in (a, b):
            moved = await c.call("thread/section/move", {"threadId": tid, "sectionId": work["id"]})
            assert moved == {}
            changed = await c.notification("thread/section/changed")
            assert changed["params"] == {"threadId": tid, "sectionId": work["id"]}
        # t3 goes before a: the section's order is now t3, a, b.
        await c.call(
            "thread/section/move",
            {"threadId": t3, "sectionId": work["id"], "beforeThreadId": a},
        )
        assert (await c.notification("thread/section/changed"))["params"]["threadId"] == t3
        in_work = await c.call("thread/list", tui_listing(work["id"]))
        assert ids(in_work) == [t3, a, b]
        assert all(t["section"]["id"] == work["id"] for t in in_work["data"])
        assert all(isinstance(t["sectionEnteredAt"], int) for t in in_work["data"])
        paged = await c.call("thread/list", tui_listing(work["id"], limit=2))
        assert ids(paged) == [t3, a] and paged["nextCursor"] is not None
        tail = await c.call("thread/list", tui_listing(work["id"], cursor=paged["nextCursor"]))
        assert ids(tail) == [b] and tail["nextCursor"] is None
        # ``desc`` is the default (the section's order); ``asc`` reverses it.
        desc = await c.call("thread/list", tui_listing(work["id"], sortDirection="desc"))
        assert ids(desc) == [t3, a, b]
        asc = await c.call("thread/list", tui_listing(work["id"], sortDirection="asc"))
        assert ids(asc) == [b, a, t3]

        # Out of the section: null lists the unsectioned, absent lists every thread.
        await c.call("thread/section/move", {"threadId": a, "sectionId": None})
        assert (await c.notification("thread/section/changed"))["params"]["sectionId"] is None
        unsectioned = await c.call("thread/list", {"sectionId": None})
        assert ids(unsectioned) == [a]
        assert unsectioned["data"][0]["section"] is None
        assert set(ids(await c.call("thread/list", {}))) == {a, b, t3}
        read = await c.call("thread/read", {"threadId": b})
        assert read["thread"]["section"]["name"] == "Work"

        renamed = await c.call(
            "threadSection/update", {"sectionId": work["id"], "name": "Deep work"}
        )
        assert renamed["section"]["appearance"] == {"color": "blue", "icon": None}
        cleared = await c.call(
            "threadSection/update",
            {"sectionId": work["id"], "name": "Deep work", "appearance": None},
        )
        assert cleared["section"] == {"id": work["id"], "name": "Deep work", "appearance": None}

        for method, params in [
            ("thread/section/move", {"threadId": a, "sectionId": "no-such-section"}),
            (
                "thread/section/move",
                {"threadId": a, "sectionId": other["id"], "beforeThreadId": b},
            ),
            ("thread/section/move", {"threadId": "no-such-thread", "sectionId": other["id"]}),
            ("threadSection/update", {"sectionId": "no-such-section", "name": "x"}),
            ("threadSection/delete", {"sectionId": "no-such-section"}),
            ("threadSection/create", {"name": "   "}),
        ]:
            reply = await c.request(method, params)
            assert reply["error"]["code"] == -32600, (method, reply)

    # After a restart the sections, their order and the memberships are still there.
    async with open_client(transport, home, env=ENV) as c:
        assert ids(await c.call("thread/list", tui_listing(work["id"]))) == [t3, b]
        resumed = await c.call("thread/resume", {"threadId": b})
        assert resumed["thread"]["section"]["name"] == "Deep work"
        assert await c.call("threadSection/delete", {"sectionId": work["id"]}) == {}
        gone = [(await c.notification("thread/section/changed"))["params"] for _ in range(2)]
        assert {g["threadId"] for g in gone} == {t3, b}
        assert all(g["sectionId"] is None for g in gone)
        assert ids(await c.call("thread/list", tui_listing(work["id"]))) == []
        listed = await c.call("threadSection/list", {})
        assert [s["id"] for s in listed["data"]] == [other["id"]]


async def test_attachments(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("one"), mm.sse_text("two"))
    async with open_client(transport, home, env=ENV) as c:
        a = await materialized_thread(c, home, "first")
        b = await materialized_thread(c, home, "second")
        add = {
            "threadId": a,
            "attachmentType": "pullRequest",
            "identityKey": "github.com/o/r#7",
            "payload": {"url": "https://github.com/o/r/pull/7", "n": 7},
        }
        first = await c.call("thread/attachment/add", add)
        assert first["outcome"] == "created"
        att = first["attachment"]
        assert att["payload"] == add["payload"] and att["attachmentType"] == "pullRequest"
        note = (await c.notification("thread/attachment/updated"))["params"]
        assert note == {
            "threadId": a,
            "attachmentId": att["id"],
            "attachmentType": "pullRequest",
            "identityKey": "github.com/o/r#7",
            "operation": "created",
        }
        again = await c.call("thread/attachment/add", {**add, "payload": "ignored"})
        assert again == {"attachment": att, "outcome": "existing"}
        await c.call("thread/attachment/add", {**add, "threadId": b, "payload": None})
        await c.call(
            "thread/attachment/add",
            {**add, "identityKey": "github.com/o/r#8", "payload": [1, 2]},
        )
        listed = await c.call("thread/attachment/list", {"threadId": a})
        assert [x["identityKey"] for x in listed["data"]] == [
            "github.com/o/r#7",
            "github.com/o/r#8",
        ]
        owners = await c.call(
            "thread/attachmentOwner/list",
            {"attachmentType": "pullRequest", "identityKey": "github.com/o/r#7"},
        )
        assert owners["data"] == [
            {"threadId": a, "archived": False},
            {"threadId": b, "archived": False},
        ]
        await c.call("thread/archive", {"threadId": b})
        live = await c.call(
            "thread/attachmentOwner/list",
            {"attachmentType": "pullRequest", "identityKey": "github.com/o/r#7", "archived": False},
        )
        assert live["data"] == [{"threadId": a, "archived": False}]
        remove = {"threadId": a, "attachmentType": "pullRequest", "identityKey": "github.com/o/r#7"}
        assert await c.call("thread/attachment/remove", remove) == {}
        deleted = await c.wait_for(
            lambda m: (
                m.get("method") == "thread/attachment/updated"
                and m["params"]["operation"] == "deleted"
            )
        )
        assert deleted["params"]["attachmentId"] == att["id"]
        assert await c.call("thread/attachment/remove", remove) == {}
        missing = await c.request("thread/attachment/add", {**add, "threadId": "nope"})
        assert missing["error"]["code"] == -32600
    async with open_client(transport, home, env=ENV) as c:
        listed = await c.call("thread/attachment/list", {"threadId": a})
        assert [x["identityKey"] for x in listed["data"]] == ["github.com/o/r#8"]
        assert listed["data"][0]["payload"] == [1, 2]
        await c.call("thread/delete", {"threadId": b})
        owners = await c.call(
            "thread/attachmentOwner/list",
            {"attachmentType": "pullRequest", "identityKey": "github.com/o/r#7"},
        )
        assert owners["data"] == []
