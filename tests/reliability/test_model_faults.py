"""A broken model provider, against the real CLI over a real WebSocket, one fault per turn.

Covers, with the mock model serving each fault over real HTTP: 500 and 502 retried with
backoff (``error`` with ``willRetry``) then completed; 503 past ``request_max_retries`` failed
with ``responseTooManyFailedAttempts``; 429 retried after its ``Retry-After``; 400, 401 and 403
failed at once, with the provider's message and no retry; a stream cut before
``response.completed`` retried on ``stream_max_retries`` without sending again the text the
client already has, or failed with ``responseStreamDisconnected`` past the budget; a stalled
stream ended by ``stream_idle_timeout_ms``; one malformed SSE line inside a valid stream
skipped (the turn completes); a body of garbage failed; an unreachable ``base_url`` failed
fast. After every turn the server is still up, and what the client was shown (items, text,
status, error) is what ``thread/read`` returns.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import run_turn, start_thread
from tests.harness import TIMEOUT, WebSocketWire, start_ws_server, ws_connect
from tests.support import mock_model as mm

IDLE_MS = 400


def _config(home: Path, base_url: str) -> None:
    write_config(home, base_url, request_retries=2, stream_retries=1)
    with (home / "config.toml").open("a", encoding="utf-8") as f:
        f.write(f"stream_idle_timeout_ms = {IDLE_MS}\n")  # the mock provider's table is last


async def _turn(c: WebSocketWire, tid: str, text: str) -> tuple[dict[str, Any], list[Any]]:
    """Run one turn; its ``turn/completed`` turn and every message the client got for it."""
    turn_id = await run_turn(c, tid, text)
    done = await c.wait_for(
        lambda m: m.get("method") == "turn/completed" and m["params"]["turn"]["id"] == turn_id,
        TIMEOUT,
    )
    mine = [m for m in c.seen if m.get("params", {}).get("turnId") == turn_id]
    return done["params"]["turn"], mine


def _shown_messages(messages: list[Any]) -> list[str]:
    """Agent message texts the client was shown (completed items), checking that each one's
    deltas add up to exactly its text: nothing sent twice, nothing missing."""
    texts = []
    for m in messages:
        if m.get("method") != "item/completed" or m["params"]["item"]["type"] != "agentMessage":
            continue
        item = m["params"]["item"]
        deltas = [
            d["params"]["delta"]
            for d in messages
            if d.get("method") == "item/agentMessage/delta" and d["params"]["itemId"] == item["id"]
        ]
        if deltas:
            assert "".join(deltas) == item["text"], (deltas, item["text"])
        texts.append(item["text"])
    return texts


def _errors(messages: list[Any]) -> list[dict[str, Any]]:
    return [m["params"] for m in messages if m.get("method") == "error"]


async def _agrees(c: WebSocketWire, tid: str, turn: dict[str, Any], shown: list[str]) -> None:
    read = await c.call("thread/read", {"threadId": tid, "includeTurns": True})
    stored = next(t for t in read["thread"]["turns"] if t["id"] == turn["id"])
    assert stored["status"] == turn["status"]
    assert stored["error"] == turn["error"]
    assert [i["text"] for i in stored["items"] if i["type"] == "agentMessage"] == shown


async def test_each_model_fault_ends_the_turn_as_documented(home: Path, model: Any) -> None:
    _config(home, model.base_url)
    server = await start_ws_server(home, env=ENV)
    outcomes: list[str] = []
    loop = asyncio.get_running_loop()
    try:
        c = await ws_connect(server.url)
        assert "result" in await c.initialize()
        tid = await start_thread(c, home)

        async def fault(
            name: str, replies: list[mm.Reply], status: str, shown: list[str]
        ) -> tuple[dict[str, Any], list[dict[str, Any]], float]:
            before = len(model.model_requests())
            model.add(*replies)
            t0 = loop.time()
            turn, messages = await _turn(c, tid, name)
            took = loop.time() - t0
            assert turn["status"] == status, (name, turn)
            assert _shown_messages(messages) == shown, name
            await _agrees(c, tid, turn, shown)
            assert len(model.model_requests()) - before == len(replies), name
            errors = _errors(messages)
            if status == "failed":
                assert errors[-1]["willRetry"] is False
                assert errors[-1]["error"] == turn["error"]
            info = turn["error"]["codexErrorInfo"] if turn["error"] else None
            outcomes.append(f"{name}: {status} in {took:.2f} s, {len(errors)} error(s), {info}")
            return turn, errors, took

        # 500 then 502: retried with backoff, each retry announced, then the answer.
        _, errors, _ = await fault(
            "500, 502, ok",
            [mm.http_error(500), mm.http_error(502), mm.sse_text("recovered")],
            "completed",
            ["recovered"],
        )
        assert [e["willRetry"] for e in errors] == [True, True]
        assert [e["error"]["codexErrorInfo"] for e in errors] == ["internalServerError"] * 2

        # 503 three times: past request_max_retries = 2.
        turn, errors, _ = await fault("503 x3", [mm.http_error(503)] * 3, "failed", [])
        assert turn["error"]["codexErrorInfo"] == {
            "responseTooManyFailedAttempts": {"httpStatusCode": 503}
        }
        assert "exceeded retry limit, last status: 503" in turn["error"]["message"]

        # 429 with Retry-After: the retry waits for it.
        _, errors, took = await fault(
            "429 Retry-After 1",
            [mm.http_error(429, headers={"Retry-After": "1"}), mm.sse_text("after the wait")],
            "completed",
            ["after the wait"],
        )
        assert errors[0]["error"]["codexErrorInfo"] == "rateLimitExceeded"
        assert took >= 1.0

        # 400, 401, 403: no retry, the provider's message surfaced.
        for status, info in ((400, "badRequest"), (401, "unauthorized"), (403, "unauthorized")):
            body = {"error": {"message": f"provider says no ({status})", "type": "x"}}
            turn, errors, _ = await fault(f"{status}", [mm.http_error(status, body)], "failed", [])
            assert len(errors) == 1
            assert turn["error"]["codexErrorInfo"] == info
            assert f"provider says no ({status})" in turn["error"]["message"]

        # A stream cut after part of the answer, then a whole one: the client keeps one item
        # and gets only the rest of the text.
        cut = mm.sse_truncated(mm.text_events("all of the answer", chunks=["all of "])[:2])
        whole = mm.sse_text("all of the answer", chunks=["all of ", "the answer"])
        _, errors, _ = await fault("cut, ok", [cut, whole], "completed", ["all of the answer"])
        assert "responseStreamDisconnected" in errors[0]["error"]["codexErrorInfo"]

        # Cut twice (stream budget 1): failed; the partial text stays as shown.
        cuts = [
            mm.sse_truncated(mm.text_events("half", chunks=["ha"])[:2], abort=True)
            for _ in range(2)
        ]
        turn, _, _ = await fault("cut x2", cuts, "failed", ["ha"])
        assert "responseStreamDisconnected" in turn["error"]["codexErrorInfo"]

        # A stalled stream: ended after stream_idle_timeout_ms, retried, then failed.
        stalls = [mm.sse_text("never"), mm.sse_text("never")]
        for reply in stalls:
            reply.hold_before(1)
        turn, _, took = await fault("stalled x2", stalls, "failed", [])
        assert "idle timeout" in turn["error"]["message"]
        assert took >= 2 * IDLE_MS / 1000

        # One malformed SSE line inside a valid stream: skipped, as the reference does.
        await fault(
            "malformed line",
            [mm.sse_with_malformed_line(mm.text_events("still whole"), at=2)],
            "completed",
            ["still whole"],
        )

        # Nothing but garbage: retried once, then failed.
        turn, _, _ = await fault("garbage x2", [mm.sse_garbage(), mm.sse_garbage()], "failed", [])
        assert "responseStreamDisconnected" in turn["error"]["codexErrorInfo"]

        # Still up, and the thread still works.
        await fault("ok", [mm.sse_text("fine")], "completed", ["fine"])
        await c.close()
        assert server.proc.returncode is None
        assert not any("Traceback" in line for line in server.stderr_lines)
        assert any("skipping a malformed event" in line for line in server.stderr_lines)
    finally:
        await server.stop()
    print("\n" + "\n".join(outcomes), file=sys.stderr)


async def test_unreachable_base_url_fails_fast(home: Path) -> None:
    _config(home, f"http://127.0.0.1:{mm.closed_port()}/v1")
    server = await start_ws_server(home, env=ENV)
    try:
        c = await ws_connect(server.url)
        assert "result" in await c.initialize()
        tid = await start_thread(c, home)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        turn, messages = await _turn(c, tid, "anyone there?")
        took = loop.time() - t0
        print(f"\nclosed port: failed in {took:.2f} s", file=sys.stderr)
        assert turn["status"] == "failed"
        assert turn["error"]["codexErrorInfo"] == {"httpConnectionFailed": {"httpStatusCode": None}}
        errors = _errors(messages)
        assert [e["willRetry"] for e in errors] == [True, True, False]
        assert took < 5.0
        await _agrees(c, tid, turn, [])
        await c.close()
    finally:
        await server.stop()
