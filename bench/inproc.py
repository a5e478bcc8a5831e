"""The in-process streaming benchmark, in its own process (``python -m bench.inproc``).

Owns one embedded server (``start_in_process``) and its client in one event loop (uvloop when
installed, as the CLI does): for each run it starts a thread, starts a turn whose scripted reply
streams ``--count`` deltas, and reads events until ``turn/completed``. It prints one JSON line
with each run's delta count, assembled-text check, skipped (``Lagged``) count and timestamps.
The script comes from ``$APPSERVER_SCRIPT``, set by the parent. It must never open a socket.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

import orjson

from appserver.server.app import start_in_process
from appserver.transports.in_process import Lagged, ServerNotification


async def _run(home: str, runs: int, capacity: int, chunk: str, count: int) -> list[dict[str, Any]]:
    client = await start_in_process(home, client_name="appserver-bench", channel_capacity=capacity)
    results: list[dict[str, Any]] = []
    try:
        for _ in range(runs):
            started = await client.request("thread/start", {}, timeout=60)
            thread_id = started["thread"]["id"]
            turn = client.submit_request(
                "turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": "go"}]}
            )
            parts: list[str] = []
            first = last = None
            skipped = 0
            began = time.perf_counter()
            while True:
                event = await client.next_event(timeout=120)
                now = time.perf_counter()
                if isinstance(event, ServerNotification):
                    if event.method == "item/agentMessage/delta":
                        parts.append(event.params["delta"])
                        if first is None:
                            first = now
                        last = now
                    elif event.method == "turn/completed":
                        break
                elif isinstance(event, Lagged):
                    skipped += event.skipped
            await turn
            text = "".join(parts)
            results.append(
                {
                    "deltas": len(parts),
                    "chars": len(text),
                    "exact": text == chunk * count,
                    "skipped": skipped,
                    "began": began,
                    "first": first,
                    "last": last,
                    "completed": now,
                }
            )
    finally:
        await client.shutdown()
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.inproc")
    ap.add_argument("--home", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--capacity", type=int, default=4096)
    ap.add_argument("--chunk", default="x")
    ap.add_argument("--count", type=int, default=100_000)
    args = ap.parse_args(argv)
    coro = _run(args.home, args.runs, args.capacity, args.chunk, args.count)
    try:
        import uvloop

        results, loop = uvloop.run(coro), "uvloop"
    except ImportError:
        results, loop = asyncio.run(coro), "asyncio"
    sys.stdout.write(orjson.dumps({"loop": loop, "runs": results}).decode() + "\n")


if __name__ == "__main__":
    main()
