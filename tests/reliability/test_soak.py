"""Many concurrent WebSocket clients running turns against the built-in scripted model.

Covers: every client opens its own thread and runs turns back to back, with a cheap request
between turns; every turn completes with the exact echoed text, every request is answered,
and the server's RSS after warm-up stays flat (sampled at fixed turn counts, not on a timer).
CI runs 50 clients x 10 turns; ``APPSERVER_FULL_SOAK=1`` runs 200 clients for 60 s. The
figures (turns, requests, RSS at warm-up, end and peak) are printed to stderr.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.harness import TIMEOUT, WireClient, start_ws_server, ws_connect
from tests.reliability.conftest import FULL, scaled

CLIENTS = scaled(50, 200)
TURNS = 10  # per client, CI
DURATION_S = 60.0  # full run
MiB = 1024 * 1024


@dataclass
class Stats:
    turns: int = 0
    requests: int = 0
    samples: list[tuple[int, int]] = field(default_factory=list)  # (turns done, RSS)
    warm_rss: int | None = None


async def one_client(
    url: str, home: Path, n: int, stats: Stats, deadline: float, sample: Callable[[], None]
) -> int:
    client: WireClient = await ws_connect(url)
    loop = asyncio.get_running_loop()
    done = 0
    try:
        assert "result" in await client.initialize()
        thread = await client.call("thread/start", {"cwd": str(home)})
        tid = thread["thread"]["id"]
        stats.requests += 2
        while (done < TURNS) if not FULL else (loop.time() < deadline):
            text = f"client {n} turn {done}"
            await client.call(
                "turn/start", {"threadId": tid, "input": [{"type": "text", "text": text}]}
            )
            item = await client.wait_for(
                lambda m: (
                    m.get("method") == "item/completed"
                    and m["params"]["item"]["type"] == "agentMessage"
                ),
                TIMEOUT * 4,
            )
            assert item["params"]["item"]["text"] == f"Echo: {text}"
            turn = await client.notification("turn/completed", TIMEOUT * 4)
            assert turn["params"]["turn"]["status"] == "completed"
            assert "result" in await client.request("account/read", {})
            stats.requests += 2
            stats.turns += 1
            done += 1
            client.seen.clear()
            client.buffer.clear()
            sample()
    finally:
        await client.close()
    return done


async def test_concurrent_clients_run_turns_with_flat_memory(home: Path) -> None:
    server = await start_ws_server(home)
    proc = psutil.Process(server.proc.pid)
    stats = Stats()
    every = max(CLIENTS, 20)  # a sample each time this many more turns have completed
    warm_after = CLIENTS * 2 if FULL else CLIENTS

    def sample() -> None:
        if stats.turns % every == 0 or stats.turns == warm_after:
            rss = int(proc.memory_info().rss)
            stats.samples.append((stats.turns, rss))
            if stats.warm_rss is None and stats.turns >= warm_after:
                stats.warm_rss = rss

    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + DURATION_S
    try:
        results = await asyncio.wait_for(
            asyncio.gather(
                *(one_client(server.url, home, n, stats, deadline, sample) for n in range(CLIENTS))
            ),
            DURATION_S * 3 if FULL else 240,
        )
        end_rss = int(proc.memory_info().rss)
        log = "".join(server.stderr_lines)
    finally:
        await server.stop()
    elapsed = loop.time() - started
    assert len(results) == CLIENTS and all(r >= (1 if FULL else TURNS) for r in results)
    assert "Traceback" not in log
    warm = stats.warm_rss or stats.samples[0][1]
    peak = max(r for _, r in stats.samples)
    print(
        f"\nsoak: {CLIENTS} clients, {stats.turns} turns, {stats.requests} requests in "
        f"{elapsed:.1f} s; RSS warm {warm / MiB:.1f} MiB, end {end_rss / MiB:.1f} MiB, "
        f"peak {peak / MiB:.1f} MiB; samples {[(t, round(r / MiB, 1)) for t, r in stats.samples]}",
        file=sys.stderr,
    )
    # Flat after warm-up: loaded threads grow by their history only (a few KiB per turn).
    assert end_rss - warm < max(48 * MiB, warm // 4), (warm, end_rss)
