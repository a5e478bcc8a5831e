"""One WebSocket streaming client in its own process (``python -m bench.worker``).

Owns a single subscriber of the streaming benchmark: it connects, initializes, and either
starts a thread (``--role start``; it prints the thread id, waits for ``go`` on stdin, then
sends ``turn/start``) or subscribes to one with ``thread/resume`` (``--role follow``). It
then reads until ``turn/completed`` and prints one JSON line: delta count, whether the
assembled text is exact, timestamps, or the close code if the server closed it. With
``--pace-ms`` it is the slow reader: a small socket buffer, small reads, and a pause after
each message for at most ``--pace-for-s`` seconds, after which it reads at full speed so the
run stays bounded. It must never talk to anything but the URL it is given.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson

from bench.wire import Closed, Timeout, WsClient, stream_until_completed


def _say(obj: dict[str, Any]) -> None:
    sys.stdout.write(orjson.dumps(obj).decode() + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.worker")
    ap.add_argument("--url", required=True)
    ap.add_argument("--role", choices=["start", "follow"], required=True)
    ap.add_argument("--thread-id")
    ap.add_argument("--chunk", default="x", help="the scripted delta")
    ap.add_argument("--count", type=int, default=100_000, help="how many deltas the turn streams")
    ap.add_argument("--timeout", type=float, default=120.0)
    ap.add_argument("--pace-ms", type=float, default=0.0)
    ap.add_argument("--pace-for-s", type=float, default=20.0)
    args = ap.parse_args(argv)

    slow = args.pace_ms > 0
    ws = WsClient(
        args.url,
        rcvbuf=16384 if slow else None,
        recv_size=4096 if slow else 1 << 20,
    )
    ws.initialize()
    if args.role == "start":
        reply = ws.request("thread/start", {})
        thread_id = reply["result"]["thread"]["id"]
        _say({"ready": True, "threadId": thread_id})
        if sys.stdin.readline().strip() != "go":
            return
        ws.send(
            {
                "id": ws.next_id(),
                "method": "turn/start",
                "params": {"threadId": thread_id, "input": [{"type": "text", "text": "go"}]},
            }
        )
    else:
        reply = ws.request("thread/resume", {"threadId": args.thread_id})
        if "error" in reply:
            _say({"ready": False, "error": reply["error"]})
            return
        _say({"ready": True})

    began = time.perf_counter()
    paced = 0

    def pace() -> None:
        nonlocal paced
        if time.perf_counter() - began < args.pace_for_s:
            paced += 1
            time.sleep(args.pace_ms / 1000.0)  # the slow reader's deliberate pacing

    deadline = time.perf_counter() + args.timeout
    try:
        got = stream_until_completed(ws.read_messages, deadline, on_each=pace if slow else None)
    except Closed as closed:
        _say({"closed": closed.code, "reason": closed.reason, "paced": paced})
        return
    except Timeout:
        _say({"timeout": True, "paced": paced})
        return
    text = got.pop("text")
    got["chars"] = len(text)
    got["exact"] = text == args.chunk * args.count
    got["paced"] = paced
    got["cpu_s"] = time.process_time()
    _say(got)
    ws.close()


if __name__ == "__main__":
    main()
