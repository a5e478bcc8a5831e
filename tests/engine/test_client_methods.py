"""The methods the stock Codex TUI and codex-acp call besides the thread and turn core, over
all three transports: the startup answers (config requirements, permission profiles,
collaboration modes, hooks, plugins, GovCloud), selecting a permission profile, goals and
background terminals of a thread, read states, every ``thread/list`` sort key and filter, and
the context window in ``thread/tokenUsage/updated``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, run_turn, start_thread
from tests.harness import open_client
from tests.support import mock_model as mm

EXPERIMENTAL = {"experimentalApi": True}
USAGE = {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}


async def test_startup_answers(transport: str, home: Path) -> None:
    async with open_client(transport, home, capabilities=EXPERIMENTAL) as c:
        for params in (None, {}):
            reply = await c.request("configRequirements/read", params, omit_params=params is None)
            assert reply["result"] == {"requirements": None, "supportsIndependentSpeedModes": True}
        profiles = await c.call("permissionProfile/list", {"cwd": str(home), "cursor": None})
        assert profiles == {
            "data": [
                {"id": pid, "description": None, "allowed": True}
                for pid in (":read-only", ":workspace", ":danger-full-access")
            ],
            "nextCursor": None,
        }
        first = await c.call("permissionProfile/list", {"limit": 1})
        assert [p["id"] for p in first["data"]] == [":read-only"] and first["nextCursor"] == "1"
        rest = await c.call("permissionProfile/list", {"cursor": "1"})
        assert [p["id"] for p in rest["data"]] == [":workspace", ":danger-full-access"]
        bad = await c.request("permissionProfile/list", {"cursor": "x"})
        assert bad["error"]["code"] == -32600
        modes = await c.call("collaborationMode/list", {})
        assert modes == {
            "data": [
                {"name": "Plan", "mode": "plan", "model": None, "reasoning_effort": "medium"},
                {"name": "Default", "mode": "default", "model": None, "reasoning_effort": None},
            ]
        }
        hooks = await c.call("hooks/list", {"cwds": [str(home)], "threadId": None})
        assert hooks == {"data": [{"cwd": str(home), "hooks": [], "warnings": [], "errors": []}]}
        plugins = await c.call("plugin/installed", {"cwds": [str(home)]})
        assert plugins == {"marketplaces": [], "marketplaceLoadErrors": []}
        gov = await c.call("account/bedrock/checkGovCloudRequirements", {})
        assert gov == {"isGovCloud": False, "shouldWarn": False}
        tid = await start_thread(c, home)
        assert await c.call("thread/goal/get", {"threadId": tid}) == {"goal": None}
        terminals = await c.call("thread/backgroundTerminals/list", {"threadId": tid})
        assert terminals == {"data": [], "nextCursor": None}
        hooks = await c.call("hooks/list", {"threadId": tid})
        assert [entry["cwd"] for entry in hooks["data"]] == [str(home)]
        unknown = "00000000-0000-7000-8000-000000000000"
        for method in ("thread/goal/get", "thread/backgroundTerminals/list"):
            reply = await c.request(method, {"threadId": unknown})
            assert reply["error"]["code"] == -32600, method
    async with open_client(transport, home) as c:  # without experimentalApi
        reply = await c.request("collaborationMode/list", {})
        assert "requires experimentalApi" in reply["error"]["message"]
        reply = await c.request("thread/start", {"permissions": ":workspace"})
        assert reply["error"]["message"] == (
            "thread/start.permissions requires experimentalApi capability"
        )
        tid = await start_thread(c, home)
        text = [{"type": "text", "text": "x"}]
        mode = {"mode": "plan", "settings": {"model": "m"}}
        reply = await c.request(
            "turn/start", {"threadId": tid, "input": text, "collaborationMode": mode}
        )
        assert reply["error"]["message"] == (
            "turn/start.collaborationMode requires experimentalApi capability"
        )
        assert "result" in await c.request("permissionProfile/list", {})


async def test_permission_profile_selects_the_sandbox(transport: str, home: Path) -> None:
    async with open_client(transport, home, capabilities=EXPERIMENTAL) as c:
        started = await c.call("thread/start", {"cwd": str(home), "permissions": ":workspace"})
        assert started["sandbox"]["type"] == "workspaceWrite"
        assert started["sandbox"]["writableRoots"] == [str(home)]
        await c.notification("thread/started")
        legacy = {"type": "profile", "id": ":read-only"}
        started = await c.call("thread/start", {"cwd": str(home), "permissions": legacy})
        assert started["sandbox"] == {"type": "readOnly", "networkAccess": False}
        tid = started["thread"]["id"]
        for params in (
            {"permissions": ":nope"},
            {"permissions": ":workspace", "sandbox": "read-only"},
            {"permissions": {"type": "profile", "id": ":read-only", "modifications": [{}]}},
        ):
            reply = await c.request("thread/start", {"cwd": str(home), **params})
            assert reply["error"]["code"] == -32600, params
        extra = home / "extra"
        wider = {
            "type": "profile",
            "id": ":workspace",
            "modifications": [{"type": "additionalWritableRoot", "path": str(extra)}],
        }
        started = await c.call("thread/start", {"cwd": str(home), "permissions": wider})
        assert started["sandbox"]["writableRoots"] == [str(home), str(extra)]
        # turn/start selects a profile for this turn and the next ones.
        both = {"permissions": ":read-only", "sandboxPolicy": {"type": "dangerFullAccess"}}
        reply = await c.request(
            "turn/start", {"threadId": tid, "input": [{"type": "text", "text": "x"}], **both}
        )
        assert reply["error"]["code"] == -32600
        await c.call(
            "turn/start",
            {
                "threadId": tid,
                "input": [{"type": "text", "text": "hi"}],
                "permissions": ":danger-full-access",
            },
        )
        await completed_turn(c)
        resumed = await c.call("thread/resume", {"threadId": tid})
        assert resumed["sandbox"] == {"type": "dangerFullAccess"}


async def test_read_state_follows_turns_and_updates(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("one"), mm.sse_text("two"))
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        tid = await start_thread(c, home)
        assert (await c.call("thread/read", {"threadId": tid}))["readState"] is None
        first = await run_turn(c, tid, "first")
        await completed_turn(c)
        changed = (await c.notification("thread/readState/changed"))["params"]
        assert changed["threadId"] == tid
        state = changed["readState"]
        assert state["firstUnread"] == {"type": "turn", "turnId": first}
        listed = await c.call("thread/list", {"sortKey": "recency_at"})
        assert listed["readStates"] == {tid: state}
        assert (await c.call("thread/read", {"threadId": tid}))["readState"] == state
        stale = await c.request(
            "thread/readState/update",
            {"threadId": tid, "operation": {"type": "read"}, "expectedRevision": "old"},
        )
        assert stale["error"]["code"] == -32600
        read = await c.call(
            "thread/readState/update",
            {
                "threadId": tid,
                "operation": {"type": "read"},
                "expectedRevision": state["revision"],
            },
        )
        assert read["readState"]["firstUnread"] is None
        assert read["readState"]["revision"] != state["revision"]
        second = await run_turn(c, tid, "second")
        await completed_turn(c)
        again = await c.wait_for(
            lambda m: (
                m.get("method") == "thread/readState/changed"
                and m["params"]["readState"]["firstUnread"] is not None
            )
        )
        assert again["params"]["readState"]["firstUnread"]["turnId"] == second
        unread = await c.call(
            "thread/readState/update", {"threadId": tid, "operation": {"type": "unread"}}
        )
        assert unread["readState"]["firstUnread"] == {"type": "turn", "turnId": second}
    async with open_client(transport, home, env=ENV) as c:  # kept across a restart
        assert (await c.call("thread/read", {"threadId": tid}))["readState"] == unread["readState"]


async def test_thread_list_takes_every_sort_key_and_the_tui_filters(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("a"), mm.sse_text("b"), mm.sse_text("c"))
    async with open_client(transport, home, env=ENV) as c:
        ids = []
        for text in ("a", "b", "c"):
            tid = await start_thread(c, home)
            await run_turn(c, tid, text)
            await completed_turn(c)
            ids.append(tid)
        for key in ("created_at", "updated_at", "recency_at", "section_position"):
            listed = await c.call("thread/list", {"sortKey": key})
            assert [t["id"] for t in listed["data"]] == ids[::-1], key
            assert all(t["historyMode"] == "paginated" for t in listed["data"])
            assert all(t["recencyAt"] == t["updatedAt"] for t in listed["data"])
            ascending = await c.call("thread/list", {"sortKey": key, "sortDirection": "asc"})
            assert [t["id"] for t in ascending["data"]] == ids, key
            paged = await c.call("thread/list", {"sortKey": key, "limit": 2})
            more = await c.call(
                "thread/list", {"sortKey": key, "limit": 2, "cursor": paged["nextCursor"]}
            )
            assert [t["id"] for t in paged["data"] + more["data"]] == ids[::-1], key
        tui = {
            "currentAccountOnly": True,
            "excludedThreadIds": [ids[1]],
            "modelProviders": [],
            "originators": None,
            "useStateDbOnly": True,
            "parentThreadId": None,
            "ancestorThreadId": None,
            "attachedToThreadId": None,
        }
        listed = await c.call("thread/list", {"sortKey": "recency_at", "limit": 10, **tui})
        assert [t["id"] for t in listed["data"]] == [ids[2], ids[0]]
        # No thread is in a section: a section id lists none, null lists every one.
        section = "01984de2-8f74-7c91-a3b2-5c5e937cf318"
        listed = await c.call("thread/list", {"sortKey": "section_position", "sectionId": section})
        assert listed["data"] == [] and listed["readStates"] == {}
        listed = await c.call("thread/list", {"sectionId": None})
        assert len(listed["data"]) == 3
        for params in (
            {"originators": ["codex-tui"]},
            {"excludedThreadIds": ["not-a-uuid"]},
            {"excludedThreadIds": [ids[0]] * 101},
            {"sortKey": "nope"},
        ):
            reply = await c.request("thread/list", params)
            assert reply["error"]["code"] == -32600, params


async def test_token_usage_carries_the_context_window(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("one", usage=USAGE), mm.sse_text("two", usage=USAGE))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await run_turn(c, tid, "hi")
        usage = (await c.notification("thread/tokenUsage/updated"))["params"]["tokenUsage"]
        # mock-model is unknown: Codex's fallback window (272 000), 95 % of it usable.
        assert usage["modelContextWindow"] == 258400
        await completed_turn(c)
    async with open_client(transport, home, env=ENV, overrides=["model_context_window=50000"]) as c:
        await c.call("thread/resume", {"threadId": tid})
        # The resuming client is told the thread's last usage at once.
        replayed = (await c.notification("thread/tokenUsage/updated"))["params"]
        assert replayed["tokenUsage"]["total"]["totalTokens"] == 19
        assert replayed["tokenUsage"]["last"]["totalTokens"] == 19
        assert replayed["tokenUsage"]["modelContextWindow"] == 47500
        await run_turn(c, tid, "again")
        usage = (await c.notification("thread/tokenUsage/updated"))["params"]["tokenUsage"]
        assert usage["modelContextWindow"] == 47500
        await completed_turn(c)
