"""kill -9 the stdio server at random points during turns, over and over, on one home.

Covers: each round restarts the server on the same home and checks that every thread that
had started a turn lists, that every turn seen completing reads back intact (same items, same
texts), that turns cut short read back as interrupted (never in progress) and their threads
resume and run a new turn, that a torn last line (injected as a crash mid-write leaves it) is
skipped with a log line, and that the index agrees with the rollout files; then it starts
more turns on new and old threads and kills the server after a random number of messages.
The scripted model streams reasoning, a few hundred deltas and a shell command per turn. CI
runs 6 rounds; ``APPSERVER_FULL_SOAK=1`` runs 25.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appserver.store.index import ThreadStore
from tests.harness import TIMEOUT, StdioWire, spawn_stdio
from tests.reliability.conftest import scaled
from tests.store.test_store_crash import every_row, files_on_disk

ROUNDS = scaled(6, 25)

SCRIPT = {
    "rules": [
        {"when_tool_output": True, "text": "the command is done"},
        {
            "when_contains": "RUN",
            "reasoning": "planning the work",
            "text_repeat": {"chunk": "tok ", "count": 300},
            "shell": "echo from-the-shell",
        },
    ]
}


def item_view(item: dict[str, Any]) -> tuple[Any, ...]:
    kind = item["type"]
    if kind == "agentMessage":
        return (kind, item["text"])
    if kind == "commandExecution":
        return (kind, item["command"], item["status"], item["exitCode"], item["aggregatedOutput"])
    if kind == "userMessage":
        return (kind, item["content"][0]["text"])
    if kind == "reasoning":
        return (kind, tuple(item["summary"]))
    return (kind,)


@dataclass
class Expectations:
    threads: set[str] = field(default_factory=set)  # threads with at least one started turn
    completed: dict[str, tuple[str, list[tuple[Any, ...]]]] = field(default_factory=dict)
    started: dict[str, str] = field(default_factory=dict)  # turn id -> thread id
    torn: list[Path] = field(default_factory=list)


def observe(msg: dict[str, Any], exp: Expectations, items: dict[str, list[Any]]) -> None:
    method = msg.get("method")
    params = msg.get("params") or {}
    if method == "turn/started":
        exp.threads.add(params["threadId"])
        exp.started[params["turn"]["id"]] = params["threadId"]
        items[params["turn"]["id"]] = []
    elif method == "item/completed":
        items.setdefault(params["turnId"], []).append(item_view(params["item"]))
    elif method == "turn/completed" and params["turn"]["status"] == "completed":
        turn_id = params["turn"]["id"]
        exp.completed[turn_id] = (params["threadId"], items.get(turn_id, []))


async def verify(client: StdioWire, exp: Expectations, home: Path) -> None:
    listed: set[str] = set()
    cursor = None
    while True:
        page = await client.call("thread/list", {"limit": 100, "cursor": cursor})
        listed |= {t["id"] for t in page["data"]}
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert exp.threads <= listed, exp.threads - listed
    assert listed == set(files_on_disk(home)), "index and rollout files disagree"
    for tid in sorted(exp.threads):
        read = await client.call("thread/read", {"threadId": tid, "includeTurns": True})
        turns = {t["id"]: t for t in read["thread"]["turns"]}
        for turn in turns.values():
            assert turn["status"] in ("completed", "interrupted"), turn["status"]
        for turn_id, (thread_id, views) in exp.completed.items():
            if thread_id == tid:
                assert turns[turn_id]["status"] == "completed"
                assert [item_view(i) for i in turns[turn_id]["items"]] == views
        for turn_id, thread_id in exp.started.items():
            if thread_id == tid:
                assert turn_id in turns


async def run_round(
    home: Path, rnd: random.Random, exp: Expectations, script: Path, number: int
) -> None:
    client = StdioWire(await spawn_stdio(home, env={"APPSERVER_SCRIPT": str(script)}))
    try:
        await client.initialize()
        torn_expected = bool(exp.torn)
        await verify(client, exp, home)
        tids = [
            (await client.call("thread/start", {"cwd": str(home)}))["thread"]["id"]
            for _ in range(rnd.randint(1, 2))
        ]
        if exp.threads:
            old = rnd.choice(sorted(exp.threads))
            await client.call("thread/resume", {"threadId": old})
            tids.append(old)
        for i, tid in enumerate(tids):
            text = f"RUN round {number} thread {i}"
            await client.call(
                "turn/start", {"threadId": tid, "input": [{"type": "text", "text": text}]}
            )
        items: dict[str, list[Any]] = {}
        for msg in list(client.seen):
            observe(msg, exp, items)
        # Read a random number of further messages, then kill -9 wherever the server is.
        counted = len(client.seen)
        for _ in range(rnd.randint(1, 600)):
            try:
                await client.next_message(timeout=TIMEOUT)
            except TimeoutError:
                break  # every turn finished before the kill point
            for msg in client.seen[counted:]:
                observe(msg, exp, items)
            counted = len(client.seen)
        client.proc.kill()
        await client.proc.wait()
        await asyncio.wait_for(client._err, TIMEOUT)  # stderr read to its end
        for msg in client.seen[counted:]:
            observe(msg, exp, items)
        if torn_expected:
            assert any("skipping torn last line" in line for line in client.stderr_lines)
        assert not any("Traceback" in line for line in client.stderr_lines)
    finally:
        await client.close()
    if number % 3 == 1:
        # What a crash in the middle of a write leaves: a line without its end.
        newest = max(home.rglob("rollout-*.jsonl"), key=lambda p: p.stat().st_mtime_ns)
        with newest.open("ab") as f:
            f.write(b'{"timestamp":"2026-01-01T00:00:00.000Z","type":"event_msg","payl')
        exp.torn.append(newest)
    else:
        exp.torn.clear()


async def test_kill_9_during_turns_loses_nothing_completed(home: Path, tmp_path: Path) -> None:
    (home / "config.toml").write_text(
        'approval_policy = "never"\nsandbox_mode = "danger-full-access"\n', encoding="utf-8"
    )
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT), encoding="utf-8")
    rnd = random.Random(20261125)
    exp = Expectations()
    for number in range(ROUNDS):
        await asyncio.wait_for(run_round(home, rnd, exp, script, number), 120)
    # A last, clean start: everything still reads back, and a resumed thread runs a turn.
    client = StdioWire(await spawn_stdio(home, env={"APPSERVER_SCRIPT": str(script)}))
    try:
        await client.initialize()
        await verify(client, exp, home)
        tid = sorted(exp.threads)[0]
        await client.call("thread/resume", {"threadId": tid})
        await client.call(
            "turn/start", {"threadId": tid, "input": [{"type": "text", "text": "RUN final"}]}
        )
        done = await client.notification("turn/completed", TIMEOUT * 2)
        assert done["params"]["turn"]["status"] == "completed"
        assert await client.wait_closed() == 0
    finally:
        await client.close()
    with ThreadStore(home) as store:
        rows = every_row(store)
    assert {r.id: (r.path, r.archived) for r in rows} == files_on_disk(home)
    print(
        f"\ncrash loop: {ROUNDS} kill -9 rounds, {len(exp.threads)} threads, "
        f"{len(exp.started)} turns started, {len(exp.completed)} seen completing",
        file=sys.stderr,
    )
    assert exp.completed, "no turn ever completed before a kill"
