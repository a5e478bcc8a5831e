"""The scale phase of ``python -m bench``: how each figure grows with the size of the home.

Owns growing a home through the protocol (N threads of one turn each, plus one thread of K
turns, all against the loopback HTTP model of ``bench/model.py``, so the reference server can
be grown and measured the same way) and timing fresh processes on it: the first
``thread/list`` page (written right after the ``initialize`` reply), a full listing (pages of
100), ``thread/read`` of the long thread with its turns, ``thread/resume`` of it, RSS after
the resume (the server's whole process tree), and a new turn on the long thread (which is the
process's first turn). It does this at two sizes and prints each figure's growth exponent,
log(figure ratio) / log(size ratio): about 0 is flat, 1 linear, above 1 super-linear.

Must never: sleep to synchronise (every wait has a deadline), or touch a home's files
itself: the home is only what the server under test wrote.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path
from typing import Any

from bench.run import (
    MODEL_KEY_ENV,
    Bench,
    ModelProc,
    _http_turn,
    _model_home,
    model_proc,
)
from bench.wire import Closed, StdioServer, Timeout

FIGURES = [
    ("first_page_ms", "first thread/list page (25), right after initialize", "ms"),
    ("full_list_ms", "full listing, pages of 100", "ms"),
    ("read_turns_ms", "thread/read of the long thread, with turns", "ms"),
    ("resume_ms", "thread/resume of the long thread", "ms"),
    ("rss_after_resume_mb", "RSS after the resume (process tree)", "MB"),
    ("long_turn_ms", "new turn on the long thread (the process's first turn)", "ms"),
]

UNITS = {key: unit for key, _, unit in FIGURES}


def _sizes(b: Bench) -> list[tuple[int, int]]:
    sizes = []
    for part in str(b.args.scale_sizes).split(","):
        n, _, k = part.partition(":")
        sizes.append((int(n), int(k or 0)))
    return sizes


def _tree_rss_mb(pid: int) -> float | None:
    """VmRSS of ``pid`` and all its descendants (a wrapper may exec or spawn the server)."""
    total, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for row in status.splitlines():
            if row.startswith("VmRSS:"):
                total += int(row.split()[1])
        for task in Path(f"/proc/{p}").glob("task/*/children"):
            with contextlib.suppress(OSError):
                todo += [int(c) for c in task.read_text().split()]
    return total / 1024.0 if total else None


def _grow(b: Bench, model: ModelProc, env: dict[str, str], n: int, k: int) -> tuple[Path, str]:
    """A home with ``n`` threads: ``n - 1`` of one turn, one (returned) of ``k`` turns."""
    home = _model_home(b, model.url)
    expect = b.args.chunk * b.args.model_deltas
    server = StdioServer(b.stdio_argv(home), env, b.work / f"{home.name}.grow.stderr")
    try:
        server.initialize()
        long_id = ""
        for i in range(k):
            got = _http_turn(server, model, expect, thread_id=long_id or None)
            long_id = got["thread_id"]
            if got["status"] != "completed":
                raise RuntimeError(f"growing turn {i} of the long thread: {got}")
        for i in range(n - 1):
            got = _http_turn(server, model, expect)
            if got["status"] != "completed":
                raise RuntimeError(f"growing thread {i}: {got}")
    finally:
        server.close()
    return home, long_id


def _timed(server: StdioServer, method: str, params: dict[str, Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    reply = server.request(method, params, timeout=60)
    ms = (time.perf_counter() - t0) * 1000.0
    if "error" in reply:
        raise RuntimeError(f"{method}: {reply['error']}")
    return ms, reply["result"]


def _measure(
    b: Bench, model: ModelProc, env: dict[str, str], home: Path, long_id: str, n: int
) -> dict[str, float | None]:
    server = StdioServer(b.stdio_argv(home), env, b.work / f"{home.name}.stderr")
    got: dict[str, float | None] = {}
    try:
        server.initialize()
        got["first_page_ms"], page = _timed(server, "thread/list", {"limit": 25})
        t0 = time.perf_counter()
        seen, cursor = 0, None
        while True:
            _, page = _timed(server, "thread/list", {"limit": 100, "cursor": cursor})
            seen += len(page["data"])
            cursor = page.get("nextCursor")
            if not cursor:
                break
        got["full_list_ms"] = (time.perf_counter() - t0) * 1000.0
        if seen < n:
            b.log(f"scale: the full listing showed {seen} of {n} threads")
        got["read_turns_ms"], _ = _timed(
            server, "thread/read", {"threadId": long_id, "includeTurns": True}
        )
        got["resume_ms"], _ = _timed(server, "thread/resume", {"threadId": long_id})
        got["rss_after_resume_mb"] = _tree_rss_mb(server.proc.pid)
        expect = b.args.chunk * b.args.model_deltas
        turn = _http_turn(server, model, expect, thread_id=long_id)
        if turn["status"] == "completed":
            got["long_turn_ms"] = (turn["completed"] - turn["sent"]) * 1000.0
    finally:
        server.close()
    return got


def phase_scale(b: Bench) -> None:
    env = {**b.env(), MODEL_KEY_ENV: "sk-bench-loopback"}
    sizes = _sizes(b)
    medians: dict[tuple[int, int], dict[str, float | None]] = {}
    with model_proc(b, "scale") as model:
        for n, k in sizes:
            try:
                t0 = time.perf_counter()
                home, long_id = _grow(b, model, env, n, k)
                b.log(f"scale {n}:{k}: grown in {time.perf_counter() - t0:.1f} s")
                for _ in range(b.args.runs):
                    for key, value in _measure(b, model, env, home, long_id, n).items():
                        b.fig(f"scale.{n}x{k}.{key}", UNITS[key]).add(value)
            except (Closed, Timeout, KeyError, RuntimeError) as exc:
                b.log(f"scale {n}:{k} failed: {exc!r}")
                continue
            medians[(n, k)] = {
                key: b.fig(f"scale.{n}x{k}.{key}", unit).median for key, _, unit in FIGURES
            }
    b.notes["scale"] = _report(b, sizes, medians)


def _report(
    b: Bench, sizes: list[tuple[int, int]], medians: dict[tuple[int, int], dict[str, Any]]
) -> dict[str, Any]:
    if len(sizes) != 2 or any(s not in medians for s in sizes):
        return {}
    small, big = sizes
    factor = big[0] / small[0]
    rows = [
        f"| figure | {small[0]} threads, {small[1]} turns | {big[0]} threads, {big[1]} turns "
        f"| growth exponent (size x{factor:g}) |",
        "|---|---|---|---|",
    ]
    out: dict[str, Any] = {"sizes": sizes}
    for key, label, unit in FIGURES:
        a = b.fig(f"scale.{small[0]}x{small[1]}.{key}", unit)
        z = b.fig(f"scale.{big[0]}x{big[1]}.{key}", unit)
        exp = None
        if a.median and z.median:
            exp = math.log(z.median / a.median) / math.log(factor)
        out[key] = {"small": a.median, "big": z.median, "exponent": exp}
        digits = 3 if unit == "ms" and (z.median or 0) < 10 else 1
        shown = "—" if exp is None else f"{exp:.2f}"
        rows.append(f"| {label} ({unit}) | {a.text(digits)} | {z.text(digits)} | {shown} |")
    table = "\n".join(rows)
    b.log("scale:\n" + table)
    out["table"] = table
    return out
