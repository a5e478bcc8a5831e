"""Every exchange the reference server was captured in (real-peer.md §3.3 and §4), replayed
against ours over all three transports: each request gets the same class of reply — a result,
or the same error code with the same message prefix — and what the reference left unanswered
(undecodable lines, bad ids, batches, stray responses) gets no reply from us either.

The cases live in ``reference_exchanges.json``, the project's own copy of the client messages
of the captured transcripts and the reference's reply classes, so this test needs nothing
outside the repository. Thread ids the reference announced are mapped to the ones our server
announces; the reference's working directory is mapped to a temporary one.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.harness import open_client

EXCHANGES = json.loads(Path(__file__).with_name("reference_exchanges.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = EXCHANGES["cases"]
SOURCES = sorted({case["source"] for case in CASES})
REFERENCE_CWD = "/home/user/peer"
SENTINEL = "reference-replay-done"


def _mapped(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, str):
        return names.get(value, value)
    if isinstance(value, list):
        return [_mapped(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _mapped(v, names) for k, v in value.items()}
    return value


def _reply_class(reply: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any]:
    """Our reply reduced to the shape of the reference's (``expected``) for comparison."""
    if "result" in reply:
        return {"result": True}
    error = reply["error"]
    message = error["message"]
    prefix = expected.get("prefix", "")
    return {"code": error["code"], "prefix": prefix if message.startswith(prefix) else message}


def _id_key(value: Any) -> tuple[str, Any]:
    return (type(value).__name__, value)


@pytest.mark.parametrize("source", SOURCES)
async def test_reference_reply_classes(
    transport: str, home: Path, tmp_path: Path, source: str
) -> None:
    workdir = tmp_path / "peer"
    workdir.mkdir()
    names = {REFERENCE_CWD: str(workdir)}
    expected_ids: Counter[tuple[str, Any]] = Counter()
    async with open_client(transport, home, initialize=False) as client:

        async def check(case: str, want: dict[str, Any]) -> None:
            reply = await client.reply_to(want["id"])
            expected = {k: v for k, v in want["reply"].items() if k != "threadId"}
            assert _reply_class(reply, expected) == expected, (case, reply)
            expected_ids[_id_key(want["id"])] += 1
            if "threadId" in want["reply"]:
                names[want["reply"]["threadId"]] = reply["result"]["thread"]["id"]

        for case in (c for c in CASES if c["source"] == source):
            pending = list(case["expect"])
            for step in case["send"]:
                if "raw" in step:
                    await client.send_raw(step["raw"].encode())
                    continue
                await client.send(_mapped(step["msg"], names))
                # A reply announcing a thread is awaited at once: later messages name it.
                announcing = [w for w in pending if "threadId" in w["reply"]]
                if announcing and announcing[0]["id"] == step["msg"].get("id"):
                    pending.remove(announcing[0])
                    await check(case["case"], announcing[0])
            for want in pending:
                await check(case["case"], want)
        # Messages on one connection are decoded in order: once a last request is answered,
        # every earlier line has been read, and anything it was going to get is here.
        await client.send({"id": SENTINEL, "method": "thread/loaded/list", "params": {}})
        await client.reply_to(SENTINEL)
        expected_ids[_id_key(SENTINEL)] += 1
        replies = Counter(
            _id_key(m.get("id")) for m in client.seen if "method" not in m and "lagged" not in m
        )
    assert replies == expected_ids
