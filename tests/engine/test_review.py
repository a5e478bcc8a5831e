"""``review/start`` end to end over real git repositories in temporary directories, against the
mock model.

Covers: an inline review of uncommitted changes (staged, unstaged and untracked files read by
``git``) with the reference's reply, item order and rendering; the ``commit`` and ``baseBranch``
targets; the review's results reaching the next turn's model history; and the -32600 refusals
made before any turn starts (not a git repository, unknown commit or branch, ``detached``, empty
custom instructions).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.harness import WireClient, open_client
from tests.support import mock_model as mm

FINDINGS = {
    "findings": [
        {
            "title": "Fix the off-by-one",
            "body": "The loop skips the last item.\nUse range(len(xs)).",
            "confidence_score": 0.8,
            "priority": 1,
            "code_location": {
                "absolute_file_path": "/repo/app.py",
                "line_range": {"start": 2, "end": 3},
            },
        }
    ],
    "overall_correctness": "patch is incorrect",
    "overall_explanation": "One bug in the loop.",
    "overall_confidence_score": 0.8,
}
RENDERED = (
    "One bug in the loop.\n\nReview comment:\n\n- Fix the off-by-one \u2014 /repo/app.py:2-3\n"
    "  The loop skips the last item.\n  Use range(len(xs))."
)


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "app.py").write_text("def total(xs):\n    return sum(xs[:-1])\n")
    git(repo, "add", "app.py")
    git(repo, "commit", "-q", "-m", "Add total")
    return repo


async def start(c: WireClient, cwd: Path) -> str:
    result = await c.call("thread/start", {"cwd": str(cwd)})
    await c.notification("thread/started")
    return str(result["thread"]["id"])


def item_events(c: WireClient, turn_id: str) -> list[tuple[str, str]]:
    return [
        (m["method"].split("/")[1], m["params"]["item"]["type"])
        for m in c.seen
        if m.get("method") in ("item/started", "item/completed")
        and m["params"]["turnId"] == turn_id
    ]


def completed_items(c: WireClient, turn_id: str) -> dict[str, dict[str, Any]]:
    return {
        m["params"]["item"]["type"]: m["params"]["item"]
        for m in c.seen
        if m.get("method") == "item/completed" and m["params"]["turnId"] == turn_id
    }


async def test_inline_review_of_uncommitted_changes(
    transport: str, home: Path, model: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    (repo / "app.py").write_text("def total(xs):\n    return sum(xs[:-2])\n")  # unstaged
    (repo / "new.py").write_text("print('untracked')\n")  # untracked
    (repo / "staged.txt").write_text("staged line\n")
    git(repo, "add", "staged.txt")
    write_config(home, model.base_url)
    model.add(mm.sse_text(json.dumps(FINDINGS)), mm.sse_text("Fixed."))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start(c, repo)
        params = {"threadId": tid, "target": {"type": "uncommittedChanges"}, "delivery": "inline"}
        reply = await c.request("review/start", params)
        result = reply["result"]
        assert result["reviewThreadId"] == tid
        turn = result["turn"]
        assert turn["status"] == "inProgress"
        assert [i["type"] for i in turn["items"]] == ["userMessage"]
        assert turn["items"][0]["content"][0]["text"] == "current changes"
        done = (await c.notification("turn/completed"))["params"]["turn"]
        assert done["id"] == turn["id"] and done["status"] == "completed"
        # The reply goes out before the turn's notifications.
        order = [m.get("method", "reply") for m in c.seen if m is reply or "method" in m]
        assert order.index("reply") < order.index("turn/started")
        assert item_events(c, turn["id"]) == [
            ("started", "userMessage"),
            ("completed", "userMessage"),
            ("started", "enteredReviewMode"),
            ("completed", "enteredReviewMode"),
            ("started", "exitedReviewMode"),
            ("completed", "exitedReviewMode"),
            ("started", "agentMessage"),
            ("completed", "agentMessage"),
        ]
        items = completed_items(c, turn["id"])
        assert items["enteredReviewMode"]["review"] == "current changes"
        assert items["exitedReviewMode"]["review"] == RENDERED
        assert items["agentMessage"]["text"] == RENDERED
        assert not [m for m in c.seen if m.get("method") == "item/agentMessage/delta"]
        # The next turn's model knows what the review found.
        await c.call("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "fix"}]})
        await c.notification("turn/completed")
        read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
        kinds = [i["type"] for i in read["thread"]["turns"][0]["items"]]
        assert kinds == [
            "userMessage",
            "enteredReviewMode",
            "exitedReviewMode",
            "agentMessage",
        ]
    review_request, next_request = (r.body for r in model.model_requests())
    assert "tools" not in review_request
    developer, user = review_request["input"]
    assert developer["role"] == "developer"
    assert developer["content"][0]["text"].startswith("# Review guidelines")
    prompt = user["content"][0]["text"]
    assert prompt.startswith("Review the current code changes")
    assert "-    return sum(xs[:-1])" in prompt and "+    return sum(xs[:-2])" in prompt
    assert "+print('untracked')" in prompt and "+staged line" in prompt
    assert "<user_action>" in json.dumps(next_request["input"])
    assert RENDERED.splitlines()[0] in json.dumps(next_request["input"])


async def test_commit_and_base_branch_targets(
    transport: str, home: Path, model: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "app.py").write_text("def total(xs):\n    return sum(xs)\n")
    git(repo, "commit", "-q", "-am", "Fix total")
    sha = git(repo, "rev-parse", "HEAD")
    write_config(home, model.base_url)
    model.add(mm.sse_text("Nothing to flag."), mm.sse_text("Not JSON at all."))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start(c, repo)
        first = await c.call(
            "review/start", {"threadId": tid, "target": {"type": "commit", "sha": sha[:10]}}
        )
        hint = first["turn"]["items"][0]["content"][0]["text"]
        assert hint == f"commit {sha[:7]}: Fix total"
        await c.notification("turn/completed")
        second = await c.call(
            "review/start", {"threadId": tid, "target": {"type": "baseBranch", "branch": "main"}}
        )
        assert second["turn"]["items"][0]["content"][0]["text"] == "changes against 'main'"
        await c.notification("turn/completed")
        items = completed_items(c, second["turn"]["id"])
        assert items["agentMessage"]["text"] == "Not JSON at all."
    commit_prompt, branch_prompt = (
        r.body["input"][1]["content"][0]["text"] for r in model.model_requests()
    )
    assert f'introduced by commit {sha} ("Fix total")' in commit_prompt
    assert "+    return sum(xs)" in commit_prompt
    merge_base = git(repo, "merge-base", "HEAD", "main")
    assert f"The merge base commit for this comparison is {merge_base}" in branch_prompt
    assert "+    return sum(xs)" in branch_prompt


async def test_refusals_start_no_turn(
    transport: str, home: Path, model: Any, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    write_config(home, model.base_url)
    async with open_client(transport, home, env=ENV) as c:
        in_repo = await start(c, repo)
        outside = await start(c, plain)
        cases: list[tuple[str, dict[str, Any], str | None, str]] = [
            (outside, {"type": "uncommittedChanges"}, None, "not a git repository"),
            (in_repo, {"type": "commit", "sha": "0123456789abcdef"}, None, "unknown commit"),
            (in_repo, {"type": "baseBranch", "branch": "nope"}, None, "unknown branch"),
            (in_repo, {"type": "uncommittedChanges"}, "detached", "detached"),
            (in_repo, {"type": "custom", "instructions": "  "}, None, "must not be empty"),
            (in_repo, {"type": "everything"}, None, "unknown review target type"),
        ]
        for tid, target, delivery, words in cases:
            params: dict[str, Any] = {"threadId": tid, "target": target}
            if delivery is not None:
                params["delivery"] = delivery
            reply = await c.request("review/start", params)
            assert reply["error"]["code"] == -32600, (target, reply)
            assert words in reply["error"]["message"], reply
        await c.call("thread/loaded/list")
        assert not [m for m in c.seen if m.get("method") == "turn/started"]
    assert model.model_requests() == []
