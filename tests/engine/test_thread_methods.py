"""Thread methods beyond the turn loop, over all three transports: ephemeral threads,
unsubscribe and idle unload (``thread/closed``), ``thread/loaded/list``,
``thread/metadata/update``, list filters, ``thread/search``, turn overrides that persist, plans
and token usage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, run_turn, start_thread
from tests.harness import open_client
from tests.support import mock_model as mm

USAGE = {"input_tokens": 12, "output_tokens": 7, "total_tokens": 19}


async def test_ephemeral_thread_has_no_file(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("short-lived"))
    async with open_client(transport, home, env=ENV) as c:
        started = await c.call("thread/start", {"cwd": str(home), "ephemeral": True})
        thread = started["thread"]
        assert thread["ephemeral"] is True and thread["path"] is None
        await c.notification("thread/started")
        await run_turn(c, thread["id"], "hi")
        assert (await completed_turn(c))["status"] == "completed"
        read = await c.request("thread/read", {"threadId": thread["id"], "includeTurns": True})
        assert read["error"]["code"] == -32600
        assert (await c.call("thread/list", {}))["data"] == []
    assert not (home / "sessions").exists() or not list((home / "sessions").rglob("*.jsonl"))


async def test_unsubscribe_unloads_and_closes(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    async with open_client(
        transport, home, env=ENV, overrides=["thread_idle_unload_seconds=0"]
    ) as c:
        tid = await start_thread(c, home)
        assert (await c.call("thread/loaded/list", {}))["data"] == [tid]
        assert (await c.call("thread/unsubscribe", {"threadId": tid})) == {"status": "unsubscribed"}
        changed = await c.wait_for(
            lambda m: (
                m.get("method") == "thread/status/changed"
                and m["params"]["status"]["type"] == "notLoaded"
            )
        )
        assert changed["params"]["threadId"] == tid
        closed = await c.notification("thread/closed")
        assert closed["params"] == {"threadId": tid}
        assert c.seen.index(changed) < c.seen.index(closed)
        assert (await c.call("thread/loaded/list", {}))["data"] == []
        again = await c.call("thread/unsubscribe", {"threadId": tid})
        assert again == {"status": "notLoaded"}


async def test_naming_a_new_thread_writes_no_rollout_until_its_first_message(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("ok"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await c.call("thread/name/set", {"threadId": tid, "name": "Early name"})
        assert not list(home.rglob("*.jsonl"))
        assert (await c.call("thread/list", {}))["data"] == []
        read = await c.request("thread/read", {"threadId": tid, "includeTurns": True})
        assert "not materialized" in read["error"]["message"]
        await run_turn(c, tid, "first message")
        await completed_turn(c)
        listed = (await c.call("thread/list", {}))["data"]
        assert [(t["id"], t["name"]) for t in listed] == [(tid, "Early name")]
    async with open_client(transport, home, env=ENV) as c:  # read back from the rollout
        read = await c.call("thread/read", {"threadId": tid})
        assert read["thread"]["name"] == "Early name"


async def test_delete_removes_the_rollout_and_tells_every_client(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("kept"), mm.sse_text("gone"), mm.sse_text("busy"))
    async with open_client(transport, home, env=ENV) as c:
        kept = await start_thread(c, home)
        await run_turn(c, kept, "keep me")
        await completed_turn(c)
        gone = await start_thread(c, home)
        await run_turn(c, gone, "delete me")
        await completed_turn(c)
        assert len(list(home.rglob("rollout-*.jsonl"))) == 2
        assert await c.call("thread/delete", {"threadId": gone}) == {}
        assert (await c.notification("thread/deleted"))["params"] == {"threadId": gone}
        assert [t["id"] for t in (await c.call("thread/list", {}))["data"]] == [kept]
        assert gone not in (await c.call("thread/loaded/list", {}))["data"]
        read = await c.request("thread/read", {"threadId": gone})
        assert read["error"]["message"] == f"thread not loaded: {gone}"
        again = await c.request("thread/delete", {"threadId": gone})
        assert again["error"]["message"] == f"no rollout found for thread id {gone}"
        # an archived thread's rollout goes too
        await c.call("thread/archive", {"threadId": kept})
        await c.call("thread/delete", {"threadId": kept})
        assert not list(home.rglob("rollout-*.jsonl"))
        assert (await c.call("thread/list", {"archived": True}))["data"] == []
    async with open_client(transport, home, env=ENV) as c:  # the index agrees after a restart
        assert (await c.call("thread/list", {}))["data"] == []


async def test_turns_list_pages_a_threads_history(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(*[mm.sse_text(f"answer {i}") for i in range(5)])
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        turn_ids = []
        for i in range(5):
            turn_ids.append(await run_turn(c, tid, f"question {i}"))
            await completed_turn(c)
        first = await c.call("thread/turns/list", {"threadId": tid, "limit": 2})
        assert [t["id"] for t in first["data"]] == turn_ids[:-3:-1]  # newest first
        newest = first["data"][0]
        assert newest["itemsView"] == "summary"
        assert [(i["type"], i["text"]) for i in newest["items"]] == [("agentMessage", "answer 4")]
        second = await c.call(
            "thread/turns/list", {"threadId": tid, "limit": 2, "cursor": first["nextCursor"]}
        )
        assert [t["id"] for t in second["data"]] == [turn_ids[2], turn_ids[1]]
        last = await c.call(
            "thread/turns/list", {"threadId": tid, "limit": 2, "cursor": second["nextCursor"]}
        )
        assert [t["id"] for t in last["data"]] == [turn_ids[0]] and last["nextCursor"] is None
        # backwards from the second page: its anchor turn again, then the newer ones
        back = await c.call(
            "thread/turns/list",
            {"threadId": tid, "sortDirection": "asc", "cursor": second["backwardsCursor"]},
        )
        assert [t["id"] for t in back["data"]] == turn_ids[2:]
        full = await c.call("thread/turns/list", {"threadId": tid, "itemsView": "full"})
        kinds = [i["type"] for i in full["data"][-1]["items"]]
        assert kinds == ["userMessage", "agentMessage"]
        bare = await c.call("thread/turns/list", {"threadId": tid, "itemsView": "notLoaded"})
        assert all(t["items"] == [] for t in bare["data"])
        bad = await c.request("thread/turns/list", {"threadId": tid, "cursor": "nope"})
        assert bad["error"]["message"] == "invalid cursor: nope"
    async with open_client(transport, home, env=ENV) as c:  # from the rollout, not loaded
        stored = await c.call("thread/turns/list", {"threadId": tid, "sortDirection": "asc"})
        assert [t["id"] for t in stored["data"]] == turn_ids


async def test_metadata_update_is_tri_state(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        set_both = await c.call(
            "thread/metadata/update",
            {"threadId": tid, "gitInfo": {"sha": "abc", "branch": "main"}},
        )
        assert set_both["thread"]["gitInfo"] == {"sha": "abc", "branch": "main"}
        keep_sha = await c.call(
            "thread/metadata/update", {"threadId": tid, "gitInfo": {"branch": None}}
        )
        assert keep_sha["thread"]["gitInfo"] == {"sha": "abc", "branch": None}
        cleared = await c.call(
            "thread/metadata/update", {"threadId": tid, "gitInfo": {"sha": None}}
        )
        assert cleared["thread"]["gitInfo"] is None


async def test_list_filters(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    other = home / "other"
    other.mkdir()
    model.add(mm.sse_text("one"), mm.sse_text("two"))
    async with open_client(transport, home, env=ENV) as c:
        first = await start_thread(c, home)
        await run_turn(c, first, "alpha")
        await completed_turn(c)
        second = await start_thread(c, other)
        await run_turn(c, second, "beta")
        await completed_turn(c)
        by_cwd = await c.call("thread/list", {"cwd": str(other)})
        assert [t["id"] for t in by_cwd["data"]] == [second]
        by_provider = await c.call("thread/list", {"modelProviders": ["mock"]})
        assert {t["id"] for t in by_provider["data"]} == {first, second}
        assert (await c.call("thread/list", {"modelProviders": ["nope"]}))["data"] == []
        newest = await c.call("thread/list", {"sortKey": "updated_at", "limit": 1})
        assert [t["id"] for t in newest["data"]] == [second]
        assert newest["nextCursor"] is not None
        older = await c.call(
            "thread/list", {"sortKey": "updated_at", "limit": 1, "cursor": newest["nextCursor"]}
        )
        assert [t["id"] for t in older["data"]] == [first]
        back = {"sortKey": "updated_at", "sortDirection": "asc", "cursor": older["backwardsCursor"]}
        assert [t["id"] for t in (await c.call("thread/list", back))["data"]] == [second]
        assert (await c.call("thread/list", {"cwd": "/nowhere"}))["backwardsCursor"] is None
        search = await c.call("thread/list", {"searchTerm": "ALPHA"})
        assert [t["id"] for t in search["data"]] == [first]
        bad = await c.request("thread/list", {"cursor": "not-a-cursor"})
        assert bad["error"]["code"] == -32600


async def test_search_finds_threads_with_a_snippet(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("one"), mm.sse_text("two"))
    prompt = "please refactor the Gamma parser " + "and keep it tidy " * 10
    async with open_client(transport, home, env=ENV, capabilities={"experimentalApi": True}) as c:
        first = await start_thread(c, home)
        await run_turn(c, first, prompt)
        await completed_turn(c)
        second = await start_thread(c, home)
        await run_turn(c, second, "delta")
        await completed_turn(c)
        found = await c.call("thread/search", {"searchTerm": "gamma PARSER"})
        assert [r["thread"]["id"] for r in found["data"]] == [first]
        snippet = found["data"][0]["snippet"]
        assert "Gamma parser" in snippet and snippet.endswith("…") and len(snippet) < len(prompt)
        assert found["nextCursor"] is None
        recent = await c.call("thread/search", {"searchTerm": "", "sortKey": "recency_at"})
        assert [r["thread"]["id"] for r in recent["data"]] == [second, first]
        assert (await c.call("thread/search", {"searchTerm": "nowhere"}))["data"] == []
        missing = await c.request("thread/search", {})
        assert missing["error"]["message"] == "Invalid request: missing field `searchTerm`"


async def test_turn_overrides_persist(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("a"), mm.sse_text("b"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        await c.call(
            "turn/start",
            {
                "threadId": tid,
                "input": [{"type": "text", "text": "one"}],
                "model": "other-model",
                "effort": "high",
            },
        )
        await completed_turn(c)
        await run_turn(c, tid, "two")
        await completed_turn(c)
        resumed = await c.call("thread/resume", {"threadId": tid})
        assert resumed["model"] == "other-model"
        assert resumed["reasoningEffort"] == "high"
    assert [r.body["model"] for r in model.requests] == ["other-model", "other-model"]
    assert model.requests[-1].body["reasoning"]["effort"] == "high"


async def test_plan_and_token_usage(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    plan = {"explanation": "steps", "plan": [{"step": "look", "status": "in_progress"}]}
    model.add(
        mm.sse_function_call("call_p", "update_plan", plan, usage=USAGE),
        mm.sse_text("planned", usage=USAGE),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(c, home)
        turn_id = await run_turn(c, tid, "plan it")
        assert (await completed_turn(c))["status"] == "completed"
        updated = await c.notification("turn/plan/updated")
        assert updated["params"] == {
            "threadId": tid,
            "turnId": turn_id,
            "explanation": "steps",
            "plan": [{"step": "look", "status": "inProgress"}],
        }
        usage = [m["params"] for m in c.seen if m.get("method") == "thread/tokenUsage/updated"]
        assert usage[-1]["tokenUsage"]["total"]["totalTokens"] == 38
        assert usage[-1]["tokenUsage"]["last"]["inputTokens"] == 12
    rollout = next(home.rglob("rollout-*.jsonl")).read_text()
    assert '"total_token_usage":' in rollout  # the token_count event as Codex writes it
    model.add(mm.sse_text("again", usage=USAGE))
    async with open_client(transport, home, env=ENV) as c:  # the total survives a restart
        await c.call("thread/resume", {"threadId": tid})
        await run_turn(c, tid, "once more")
        assert (await completed_turn(c))["status"] == "completed"
        usage = [m["params"] for m in c.seen if m.get("method") == "thread/tokenUsage/updated"]
        assert usage[-1]["tokenUsage"]["total"]["totalTokens"] == 57
