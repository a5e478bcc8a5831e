"""The benchmark driver: ``python -m bench`` (or ``python bench/run.py``).

Owns the phases and the report. Every phase drives a server in another process (the in-process
phase runs in its own subprocess too, so this process is always just the client):

* ``startup``  spawn → ``initialize`` response, fresh home and warm home;
* ``requests`` per run a fresh server: idle RSS 1 s after initialize; for ``thread/list``
  (empty home), ``model/list``, ``config/read``, ``account/read``: sequential round trips
  (median, p99), throughput with 8 and 32 in flight, a burst of 2000 written at once
  (answered / -32001 / unanswered after 20 s); peak RSS (VmHWM) after all of it;
* ``inproc``, ``stdio``, ``ws1``, ``ws10``: a scripted turn streaming 100,000
  ``item/agentMessage/delta`` notifications: deltas per second at the client, and the time
  from the last delta received to ``turn/completed`` (the scripted model's "last byte" is its
  last delta);
* ``lastbyte`` a turn against a real HTTP model on loopback (``bench/model.py``, Responses-API
  SSE), over stdio and WebSocket: the time from the model process's last byte written to
  ``turn/completed`` received by the client, with the model holding its last byte until the
  client has all of the text (so the server is caught up, as behind a real model);
* ``slow``     a slow WebSocket reader (one message per 10 ms) beside a fast one;
* ``firstturn`` the first turn of a fresh process against the HTTP model: ``turn/start`` 1 s
  after ``thread/start`` (a user typing) and pipelined right behind it;
* ``scale``    (``bench/scale.py``) a home grown to N threads + one thread of K turns, fresh
  processes timing the first page, a full listing, read, resume, RSS and a turn, at two sizes,
  with each figure's growth exponent.

Each figure is the median of ``--runs`` runs with min and max. Results go to stdout as a
table and to ``bench/results/<timestamp>.json``. Everything is bounded (counts, deadlines)
and loopback-only. This module must never sleep to synchronise: it waits on pipes and
sockets with deadlines; the only deliberate pauses are the 1 s idle wait before reading RSS and
the modelled user's 1 s between ``thread/start`` and ``turn/start`` in ``firstturn``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.util
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.stats import Figure, percentile
from bench.wire import (
    DELTA,
    TURN_COMPLETED,
    Closed,
    StdioServer,
    Timeout,
    WsClient,
    cpu_seconds,
    line,
    rss_kb,
    stream_until_completed,
)

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
CHEAP_METHODS = ["thread/list", "model/list", "config/read", "account/read"]
OVERLOADED = -32001
BURST_WAIT_S = 20.0
PHASES = [
    "startup",
    "firstturn",
    "requests",
    "inproc",
    "stdio",
    "ws1",
    "ws10",
    "lastbyte",
    "slow",
    "scale",
]
MODEL_KEY_ENV = "APPSERVER_BENCH_MODEL_KEY"
ITEM_COMPLETED = b'"item/completed"'


@dataclass
class Bench:
    args: argparse.Namespace
    work: Path
    figures: dict[str, Figure] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    _homes: int = 0

    # -- plumbing ---------------------------------------------------------------------------
    def fig(self, name: str, unit: str) -> Figure:
        f = self.figures.get(name)
        if f is None:
            f = self.figures[name] = Figure(unit)
        return f

    def new_home(self) -> Path:
        self._homes += 1
        return self.work / f"home{self._homes}"

    @property
    def ours(self) -> bool:
        return self.args.server_cmd is None

    def script(self) -> Path:
        path = self.work / "stream.json"
        if not path.exists():
            reply = {"text_repeat": {"chunk": self.args.chunk, "count": self.args.deltas}}
            path.write_bytes(orjson.dumps({"default": reply}))
        return path

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("OPENAI_API_KEY", None)
        env["APPSERVER_SCRIPT"] = str(self.script())
        # Servers run as if installed: bytecode cached (outside the source tree), so startup
        # measures imports, not compiling them.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.setdefault("PYTHONPYCACHEPREFIX", str(RESULTS_DIR / ".pycache"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        return env

    def stdio_argv(self, home: Path) -> list[str]:
        if self.args.server_cmd:
            return shlex.split(self.args.server_cmd.replace("{home}", str(home)))
        return [sys.executable, "-m", "appserver", "serve", "--stdio", "--home", str(home)]

    def spawn_stdio(self, home: Path) -> StdioServer:
        return StdioServer(self.stdio_argv(home), self.env(), self.work / f"{home.name}.stderr")

    def log(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)


# -- startup -----------------------------------------------------------------------------------


def phase_startup(b: Bench) -> None:
    def once(home: Path) -> float:
        server = b.spawn_stdio(home)
        try:
            server.send({"id": 1, "method": "initialize", "params": _init_params()})
            server.wait_reply(1, time.perf_counter() + 30)
            return (time.perf_counter() - server.spawned_at) * 1000.0
        finally:
            server.close()

    fresh, warm = b.fig("startup.fresh_ms", "ms"), b.fig("startup.warm_ms", "ms")
    home = b.new_home()
    once(home)  # the first start creates the home; the timed warm starts reuse it
    for _ in range(b.args.runs):  # alternated, so that drifting machine load hits both alike
        fresh.add(once(b.new_home()))
        warm.add(once(home))
    b.log(f"startup: fresh {fresh.text(1)}, warm {warm.text(1)}")


def _init_params() -> dict[str, Any]:
    return {"clientInfo": {"name": "appserver-bench", "title": None, "version": "1"}}


# -- request/response --------------------------------------------------------------------------


def _sequential(server: StdioServer, method: str, n: int) -> list[float]:
    lat: list[float] = []
    write, read_lines = server.write, server.read_lines
    for _ in range(n):
        rid = server.next_id()
        data = line({"id": rid, "method": method, "params": {}})
        t0 = time.perf_counter()
        write(data)
        deadline = t0 + 30
        while True:
            lines = read_lines(deadline)
            if any(orjson.loads(raw).get("id") == rid for raw in lines):
                break
        lat.append((time.perf_counter() - t0) * 1000.0)
    return lat


def _windowed(server: StdioServer, method: str, n: int, window: int) -> tuple[float, list[float]]:
    """Keep ``window`` requests in flight until ``n`` are answered; (req/s, latencies ms)."""
    sent_at: dict[int, float] = {}
    lat: list[float] = []
    sent = 0

    def send(k: int) -> None:
        nonlocal sent
        now = time.perf_counter()
        chunks = []
        for _ in range(k):
            rid = server.next_id()
            sent_at[rid] = now
            chunks.append(line({"id": rid, "method": method, "params": {}}))
        sent += k
        server.write(b"".join(chunks))

    t0 = time.perf_counter()
    deadline = t0 + 120
    send(min(window, n))
    while len(lat) < n:
        answered = 0
        for raw in server.read_lines(deadline):
            rid = orjson.loads(raw).get("id")
            began = sent_at.pop(rid, None) if isinstance(rid, int) else None
            if began is not None:
                lat.append((time.perf_counter() - began) * 1000.0)
                answered += 1
        more = min(answered, n - sent)
        if more > 0:
            send(more)
    elapsed = time.perf_counter() - t0
    return n / elapsed, lat


def _burst(server: StdioServer, method: str, n: int) -> dict[str, int]:
    ids = [server.next_id() for _ in range(n)]
    blob = b"".join(line({"id": i, "method": method, "params": {}}) for i in ids)
    pending = set(ids)
    counts = {"ok": 0, "overloaded": 0, "other_error": 0}
    writer = threading.Thread(target=server.write, args=(blob,), daemon=True)
    deadline = time.perf_counter() + BURST_WAIT_S
    writer.start()
    with contextlib.suppress(Timeout, Closed):
        while pending:
            for raw in server.read_lines(deadline):
                msg = orjson.loads(raw)
                rid = msg.get("id")
                if rid not in pending or "method" in msg:
                    continue
                pending.discard(rid)
                if "result" in msg:
                    counts["ok"] += 1
                elif msg.get("error", {}).get("code") == OVERLOADED:
                    counts["overloaded"] += 1
                else:
                    counts["other_error"] += 1
    writer.join(5)
    counts["unanswered"] = len(pending)
    return counts


def phase_requests(b: Bench) -> None:
    n, warmup = b.args.n, b.args.warmup
    bursts: dict[str, list[dict[str, int]]] = {m: [] for m in CHEAP_METHODS}
    for run in range(b.args.runs):
        server = b.spawn_stdio(b.new_home())
        try:
            server.initialize()
            time.sleep(1.0)  # the figure is "RSS one second after initialize", not a sync
            rss, _ = server.rss_kb()
            b.fig("rss.idle_mb", "MB").add(rss / 1024 if rss else None)
            for method in CHEAP_METHODS:
                _sequential(server, method, warmup)
                lat = _sequential(server, method, n)
                b.fig(f"{method}.seq_median_ms", "ms").add(percentile(lat, 50))
                b.fig(f"{method}.seq_p99_ms", "ms").add(percentile(lat, 99))
                for window in (8, 32):
                    rate, wlat = _windowed(server, method, n, window)
                    b.fig(f"{method}.w{window}_rps", "req/s").add(rate)
                    b.fig(f"{method}.w{window}_median_ms", "ms").add(percentile(wlat, 50))
            for method in CHEAP_METHODS:
                counts = _burst(server, method, b.args.burst)
                bursts[method].append(counts)
                b.fig(f"{method}.burst_ok", "").add(counts["ok"])
                b.fig(f"{method}.burst_overloaded", "").add(counts["overloaded"])
                b.fig(f"{method}.burst_unanswered", "").add(counts["unanswered"])
            _, hwm = server.rss_kb()
            b.fig("rss.peak_mb", "MB").add(hwm / 1024 if hwm else None)
        finally:
            server.close()
        tl = b.figures["thread/list.seq_median_ms"].runs[-1]
        b.log(f"requests run {run + 1}: thread/list seq median {tl:.3f} ms")
    b.notes["bursts"] = bursts


# -- streaming ---------------------------------------------------------------------------------


def _stream_figures(b: Bench, prefix: str, got: dict[str, Any]) -> None:
    first, last, completed = got.get("first"), got.get("last"), got.get("completed")
    deltas = got.get("deltas", 0)
    if first is not None and last is not None and last > first:
        b.fig(f"{prefix}.deltas_per_s", "/s").add(deltas / (last - first))
    if last is not None and completed is not None:
        b.fig(f"{prefix}.last_delta_to_completed_ms", "ms").add((completed - last) * 1000.0)
    b.fig(f"{prefix}.deltas_received", "").add(deltas)
    b.fig(f"{prefix}.exact", "").add(1.0 if got.get("exact") else 0.0)


def phase_inproc(b: Bench) -> None:
    if not b.ours:
        b.log("inproc: skipped (only for our server)")
        return
    b.script()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.inproc",
            "--home",
            str(b.new_home()),
            "--runs",
            str(b.args.runs),
            "--chunk",
            b.args.chunk,
            "--count",
            str(b.args.deltas),
        ],
        env=b.env(),
        capture_output=True,
        timeout=600,
        check=False,
    )
    if out.returncode != 0:
        b.log(f"inproc: failed: {out.stderr.decode(errors='replace')[-2000:]}")
        return
    report = orjson.loads(out.stdout.splitlines()[-1])
    b.notes["inproc_loop"] = report["loop"]
    for got in report["runs"]:
        _stream_figures(b, "stream.inproc", got)
    b.log(f"inproc: {b.fig('stream.inproc.deltas_per_s', '/s').text(0)}")


def phase_stdio(b: Bench) -> None:
    server = b.spawn_stdio(b.new_home())
    expect = b.args.chunk * b.args.deltas
    try:
        server.initialize()
        for _ in range(b.args.runs):
            started = server.request("thread/start", {})
            thread_id = started["result"]["thread"]["id"]
            server.send(
                {
                    "id": server.next_id(),
                    "method": "turn/start",
                    "params": {"threadId": thread_id, "input": [{"type": "text", "text": "go"}]},
                }
            )
            cpu0 = cpu_seconds(server.pid)
            got = stream_until_completed(server.read_lines, time.perf_counter() + 300)
            cpu1 = cpu_seconds(server.pid)
            got["exact"] = got.pop("text") == expect
            _stream_figures(b, "stream.stdio", got)
            if cpu0 is not None and cpu1 is not None:
                per = (cpu1 - cpu0) / b.args.deltas * 1e6
                b.fig("stream.stdio.server_cpu_us_per_delta", "µs").add(per)
        _, hwm = server.rss_kb()
        b.fig("stream.stdio.peak_rss_mb", "MB").add(hwm / 1024 if hwm else None)
    except (Closed, Timeout, KeyError) as exc:
        b.log(f"stdio streaming failed: {exc!r}")
    finally:
        server.close()
    b.log(f"stdio: {b.fig('stream.stdio.deltas_per_s', '/s').text(0)}")


class WsServer:
    """Our server on a kernel-chosen loopback port, or an external ``--ws-url``."""

    def __init__(
        self, b: Bench, home: Path | None = None, env: dict[str, str] | None = None
    ) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        if b.args.ws_url:
            self.url = b.args.ws_url
            return
        argv = [sys.executable, "-m", "appserver", "serve", "--ws", "127.0.0.1:0"]
        argv += ["--home", str(home or b.new_home())]
        self.proc = subprocess.Popen(argv, stderr=subprocess.PIPE, env=env or b.env())
        found = threading.Event()
        self.url = ""
        log_path = b.work / f"ws{self.proc.pid}.stderr"

        def drain() -> None:
            assert self.proc is not None and self.proc.stderr is not None
            with log_path.open("wb") as log:
                for raw in self.proc.stderr:
                    log.write(raw)
                    m = re.search(rb"listening on: (ws://\S+)", raw)
                    if m and not found.is_set():
                        self.url = m.group(1).decode()
                        found.set()

        threading.Thread(target=drain, daemon=True).start()
        if not found.wait(30):
            self.stop()
            raise RuntimeError(f"the WebSocket server did not report its address ({log_path})")

    def peak_rss_mb(self) -> float | None:
        if self.proc is None:
            return None
        _, hwm = rss_kb(self.proc.pid)
        return hwm / 1024 if hwm else None

    def cpu_s(self) -> float | None:
        return cpu_seconds(self.proc.pid) if self.proc is not None else None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()  # our own child: SIGTERM drains and exits
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextlib.contextmanager
def ws_server(
    b: Bench, home: Path | None = None, env: dict[str, str] | None = None
) -> Iterator[WsServer]:
    server = WsServer(b, home, env)
    try:
        yield server
    finally:
        server.stop()


def _worker(b: Bench, url: str, role: str, *extra: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "bench.worker", "--url", url, "--role", role]
    argv += ["--chunk", b.args.chunk, "--count", str(b.args.deltas), *extra]
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=b.env(), cwd=ROOT
    )


def _read_json(proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    """One JSON line from a worker, bounded by ``timeout``."""
    assert proc.stdout is not None
    box: list[bytes] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not box or not box[0]:
        raise Timeout(f"worker {proc.pid} said nothing within {timeout} s")
    return dict(orjson.loads(box[0]))


def ws_turn(b: Bench, url: str, followers: list[list[str]]) -> list[dict[str, Any]]:
    """One streaming turn: a starting client plus followers; each client's result."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        starter = _worker(b, url, "start")
        procs.append(starter)
        thread_id = _read_json(starter, 60)["threadId"]
        for extra in followers:
            procs.append(_worker(b, url, "follow", "--thread-id", thread_id, *extra))
        for proc in procs[1:]:
            ready = _read_json(proc, 60)
            if not ready.get("ready"):
                raise RuntimeError(f"a follower could not subscribe: {ready}")
        assert starter.stdin is not None
        starter.stdin.write(b"go\n")
        starter.stdin.flush()
        return [_read_json(proc, 600) for proc in procs]
    finally:
        for proc in procs:
            with contextlib.suppress(OSError):
                if proc.stdin is not None:
                    proc.stdin.close()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def phase_ws(b: Bench, clients: int) -> None:
    prefix = f"stream.ws{clients}"
    with ws_server(b) as server:
        for _ in range(b.args.runs):
            cpu0 = server.cpu_s()
            results = ws_turn(b, server.url, [[] for _ in range(clients - 1)])
            cpu1 = server.cpu_s()
            if cpu0 is not None and cpu1 is not None:
                # The server's own CPU per delta per client: what the server could sustain on
                # a core of its own, whatever the clients on the same machine cost.
                per = (cpu1 - cpu0) / (b.args.deltas * clients) * 1e6
                b.fig(f"{prefix}.server_cpu_us_per_delta_client", "µs").add(per)
            rates = []
            for got in results:
                _stream_figures(b, f"{prefix}.client", got)
                if got.get("first") and got.get("last") and got["last"] > got["first"]:
                    rates.append(got["deltas"] / (got["last"] - got["first"]))
            if rates:
                b.fig(f"{prefix}.median_client_per_s", "/s").add(sorted(rates)[len(rates) // 2])
                b.fig(f"{prefix}.slowest_client_per_s", "/s").add(min(rates))
        b.fig(f"{prefix}.peak_rss_mb", "MB").add(server.peak_rss_mb())
    b.log(f"ws{clients}: {b.fig(f'{prefix}.median_client_per_s', '/s').text(0)} per client")


# -- last byte of a real HTTP model → turn/completed -------------------------------------------


class ModelProc:
    """``bench/model.py`` in its own process: the loopback HTTP model and its timestamps."""

    def __init__(self, b: Bench, name: str) -> None:
        argv = [sys.executable, "-m", "bench.model", "--chunk", b.args.chunk]
        argv += ["--count", str(b.args.model_deltas)]
        self.proc = StdioServer(argv, b.env(), b.work / f"model-{name}.stderr")
        hello = orjson.loads(self.proc.read_lines(time.perf_counter() + 30)[0])
        self.url: str = hello["url"]
        self.clock: str = hello["clock"]

    def release(self) -> None:
        """Let the held reply send its last bytes."""
        self.proc.write(b"release\n")

    def stamp(self, deadline: float) -> dict[str, Any]:
        """The model's line about the reply it just finished (``last_byte`` or ``error``)."""
        return dict(orjson.loads(self.proc.read_lines(deadline)[0]))

    def close(self) -> None:
        self.proc.close()


def _model_home(b: Bench, model_url: str) -> Path:
    """A fresh home whose config.toml points the server at the loopback HTTP model."""
    home = b.new_home()
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f"""model = "bench-model"
model_provider = "benchmodel"
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.benchmodel]
name = "Benchmark HTTP model (loopback)"
base_url = "{model_url}"
wire_api = "responses"
env_key = "{MODEL_KEY_ENV}"
request_max_retries = 0
stream_max_retries = 0
""",
        encoding="utf-8",
    )
    return home


def _http_turn(
    client: StdioServer | WsClient,
    model: ModelProc,
    expect: str,
    timeout: float = 60.0,
    think_s: float = 0.0,
    thread_id: str | None = None,
) -> dict[str, Any]:
    """One turn against the held HTTP model: the client reads the text; once it has all of
    it, the model is released; ``turn/completed`` read → the model's last-byte timestamp.
    ``think_s`` is a pause between ``thread/start`` and ``turn/start`` (a user typing)."""
    if thread_id is None:
        started = client.request("thread/start", {})
        thread_id = started["result"]["thread"]["id"]
    if think_s > 0:
        time.sleep(think_s)  # not a synchronisation: the modelled user's typing time
    client.send(
        {
            "id": client.next_id(),
            "method": "turn/start",
            "params": {"threadId": thread_id, "input": [{"type": "text", "text": "go"}]},
        }
    )
    sent = time.perf_counter()
    deadline = sent + timeout
    parts: list[str] = []
    have = 0
    released = False
    item_done = None
    while True:
        batch = client.messages(deadline)
        now = time.perf_counter()
        for raw in batch:
            if item_done is None and released and ITEM_COMPLETED in raw:
                msg = orjson.loads(raw)
                item = msg.get("params", {}).get("item") or {}
                if msg.get("method") == "item/completed" and item.get("type") == "agentMessage":
                    item_done = now
            elif DELTA in raw:
                msg = orjson.loads(raw)
                if msg.get("method") == "item/agentMessage/delta":
                    delta = msg["params"]["delta"]
                    parts.append(delta)
                    have += len(delta)
            elif TURN_COMPLETED in raw:
                msg = orjson.loads(raw)
                if msg.get("method") == "turn/completed":
                    if not released:  # the turn ended early; free the held reply anyway
                        model.release()
                    stamp = model.stamp(deadline)
                    return {
                        "thread_id": thread_id,
                        "sent": sent,
                        "completed": now,
                        "item_completed": item_done,
                        "last_byte": stamp.get("last_byte"),
                        "released": released and stamp.get("released", False),
                        "error": stamp.get("error"),
                        "exact": "".join(parts) == expect,
                        "status": msg["params"]["turn"].get("status"),
                    }
        if not released and have >= len(expect):
            model.release()
            released = True


def _http_turns(
    b: Bench, name: str, client: StdioServer | WsClient, model: ModelProc
) -> list[float]:
    expect = b.args.chunk * b.args.model_deltas
    fig = b.fig(f"lastbyte.{name}.ms", "ms")
    item_fig = b.fig(f"lastbyte.{name}.to_item_completed_ms", "ms")
    exact = b.fig(f"lastbyte.{name}.exact", "")
    for run in range(b.args.runs + 1):  # run 0 warms up (first turn of a fresh server)
        got = _http_turn(client, model, expect)
        ok = got["released"] and got["last_byte"] is not None and got["status"] == "completed"
        if not ok:
            b.log(f"lastbyte {name}: turn {run} went wrong: {got}")
            continue
        ms = (got["completed"] - got["last_byte"]) * 1000.0
        if run == 0:
            b.notes.setdefault("lastbyte_first_turn_ms", {})[name] = ms
            continue
        fig.add(ms)
        if got["item_completed"] is not None:
            item_fig.add((got["item_completed"] - got["last_byte"]) * 1000.0)
        exact.add(1.0 if got["exact"] else 0.0)
    return fig.runs


@contextlib.contextmanager
def model_proc(b: Bench, name: str) -> Iterator[ModelProc]:
    model = ModelProc(b, name)
    try:
        yield model
    finally:
        model.close()


def phase_lastbyte(b: Bench) -> None:
    clock = time.get_clock_info("perf_counter").implementation
    if "CLOCK_MONOTONIC" not in clock:
        b.log(f"lastbyte: skipped (perf_counter is {clock}, not one clock for all processes)")
        return
    b.notes["lastbyte_model"] = {"deltas": b.args.model_deltas, "chunk": b.args.chunk}
    env = {**b.env(), MODEL_KEY_ENV: "sk-bench-loopback"}
    # A model process per transport: a failed turn can leave a reply held, and that must not
    # shift the next transport's timestamps.
    with model_proc(b, "stdio") as model:
        if model.clock != clock:
            b.log(f"lastbyte: skipped (the model's clock is {model.clock}, ours {clock})")
            return
        home = _model_home(b, model.url)
        server = StdioServer(b.stdio_argv(home), env, b.work / f"{home.name}.stderr")
        try:
            server.initialize()
            _http_turns(b, "stdio", server, model)
        except (Closed, Timeout, KeyError) as exc:
            b.log(f"lastbyte stdio failed: {exc!r}")
        finally:
            server.close()
    b.log(f"lastbyte stdio: {b.fig('lastbyte.stdio.ms', 'ms').text(3)}")
    if not b.ours or b.args.ws_url:
        b.log("lastbyte ws: skipped (only for our server, which this phase configures)")
        return
    with model_proc(b, "ws") as model, ws_server(b, _model_home(b, model.url), env) as wss:
        ws = WsClient(wss.url)
        try:
            ws.initialize()
            _http_turns(b, "ws", ws, model)
        except (Closed, Timeout, KeyError) as exc:
            b.log(f"lastbyte ws failed: {exc!r}")
        finally:
            ws.close()
    b.log(f"lastbyte ws: {b.fig('lastbyte.ws.ms', 'ms').text(3)}")


FIRST_TURN_THINK_S = 1.0


def phase_firstturn(b: Bench) -> None:
    """The first turn of a fresh process against the loopback HTTP model: spawn, then
    ``initialize``, ``thread/start``, then ``turn/start`` either after 1 s (a user typing the
    first prompt: ``firstturn.ms``) or at once (a script: ``firstturn.pipelined_ms``),
    alternated. The figure is ``turn/start`` written → ``turn/completed`` read (the model's
    hold, released as soon as the client has all the text, is inside it, for every server)."""
    env = {**b.env(), MODEL_KEY_ENV: "sk-bench-loopback"}
    expect = b.args.chunk * b.args.model_deltas
    figs = {
        FIRST_TURN_THINK_S: b.fig("firstturn.ms", "ms"),
        0.0: b.fig("firstturn.pipelined_ms", "ms"),
    }
    with model_proc(b, "firstturn") as model:
        for _ in range(b.args.runs):
            for think_s, fig in figs.items():
                home = _model_home(b, model.url)
                server = StdioServer(b.stdio_argv(home), env, b.work / f"{home.name}.stderr")
                try:
                    server.initialize()
                    got = _http_turn(server, model, expect, think_s=think_s)
                except (Closed, Timeout, KeyError) as exc:
                    b.log(f"firstturn failed: {exc!r}")
                    continue
                finally:
                    server.close()
                if got["status"] != "completed" or not got["exact"]:
                    b.log(f"firstturn: the turn went wrong: {got}")
                    continue
                fig.add((got["completed"] - got["sent"]) * 1000.0)
    b.log(f"firstturn: after 1 s {figs[1.0].text(1)}, pipelined {figs[0.0].text(1)}")


def phase_slow(b: Bench) -> None:
    outcomes: list[dict[str, Any]] = []
    for _ in range(b.args.runs):
        with ws_server(b) as server:
            solo = ws_turn(b, server.url, [])[0]
            fast, slow = ws_turn(
                b, server.url, [["--pace-ms", "10", "--pace-for-s", str(b.args.pace_for_s)]]
            )
            solo_rate = _rate(solo)
            fast_rate = _rate(fast)
            if solo_rate and fast_rate:
                b.fig("slow.fast_vs_solo_pct", "%").add(100.0 * fast_rate / solo_rate)
                b.fig("slow.fast_per_s", "/s").add(fast_rate)
                b.fig("slow.solo_per_s", "/s").add(solo_rate)
            b.fig("slow.peak_rss_mb", "MB").add(server.peak_rss_mb())
            if "closed" in slow:
                outcome = f"closed {slow['closed']}"
            elif slow.get("exact"):
                outcome = "exact"
            else:
                outcome = "WRONG" if "chars" in slow else "timeout"
            outcomes.append(
                {
                    "outcome": outcome,
                    "slow_messages": slow.get("deltas"),
                    "slow_paced_reads": slow.get("paced"),
                }
            )
    b.notes["slow_reader"] = outcomes
    b.log(f"slow reader: {[o['outcome'] for o in outcomes]}")


def _scale_phase(b: Bench) -> None:
    from bench.scale import phase_scale  # it imports this module's helpers

    phase_scale(b)


def _rate(got: dict[str, Any]) -> float | None:
    first, last = got.get("first"), got.get("last")
    if first is None or last is None or last <= first:
        return None
    return float(got["deltas"]) / float(last - first)


# -- report ------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for text_line in Path("/proc/cpuinfo").read_text().splitlines():
            if text_line.startswith("model name"):
                cpu = text_line.split(":", 1)[1].strip()
                break
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "uvloop": importlib.util.find_spec("uvloop") is not None,
        "platform": platform.platform(),
    }


# (figure key, label, target text, comparison) — comparison returns True when met.
Check = Callable[[float], bool]
TARGETS: list[tuple[str, str, str, Check | None]] = [
    (
        "thread/list.seq_median_ms",
        "thread/list seq median (stdio)",
        "≤ 0.25 ms",
        lambda v: v <= 0.25,
    ),
    ("thread/list.seq_p99_ms", "thread/list seq p99", "", None),
    ("thread/list.w8_rps", "thread/list 8 in flight", "≥ 6,000 req/s", lambda v: v >= 6000),
    ("thread/list.w32_rps", "thread/list 32 in flight", "", None),
    ("model/list.seq_median_ms", "model/list seq median", "≤ 1 ms", lambda v: v <= 1.0),
    ("model/list.seq_p99_ms", "model/list seq p99", "", None),
    ("model/list.w8_rps", "model/list 8 in flight", "", None),
    ("model/list.w32_rps", "model/list 32 in flight", "", None),
    ("config/read.seq_median_ms", "config/read seq median", "≤ 1 ms", lambda v: v <= 1.0),
    ("config/read.seq_p99_ms", "config/read seq p99", "", None),
    ("config/read.w8_rps", "config/read 8 in flight", "", None),
    ("config/read.w32_rps", "config/read 32 in flight", "", None),
    ("account/read.seq_median_ms", "account/read seq median", "", None),
    ("account/read.seq_p99_ms", "account/read seq p99", "", None),
    ("account/read.w8_rps", "account/read 8 in flight", "", None),
    ("account/read.w32_rps", "account/read 32 in flight", "", None),
    ("thread/list.burst_ok", "burst 2000 thread/list: answered", "2000", lambda v: v >= 2000),
    ("thread/list.burst_overloaded", "burst 2000 thread/list: -32001", "", None),
    ("thread/list.burst_unanswered", "burst 2000 thread/list: unanswered", "0", lambda v: v == 0),
    ("model/list.burst_ok", "burst 2000 model/list: answered", "2000", lambda v: v >= 2000),
    ("config/read.burst_ok", "burst 2000 config/read: answered", "2000", lambda v: v >= 2000),
    ("account/read.burst_ok", "burst 2000 account/read: answered", "2000", lambda v: v >= 2000),
    ("startup.fresh_ms", "startup, fresh home", "≤ 150 ms", lambda v: v <= 150),
    ("startup.warm_ms", "startup, warm home", "", None),
    (
        "firstturn.ms",
        "first turn of a fresh process, 1 s after thread/start (HTTP model)",
        "",
        None,
    ),
    ("firstturn.pipelined_ms", "first turn of a fresh process, pipelined (HTTP model)", "", None),
    ("rss.idle_mb", "idle RSS 1 s after initialize", "≤ 60 MB", lambda v: v <= 60),
    ("rss.peak_mb", "peak RSS over the request runs", "", None),
    (
        "stream.inproc.deltas_per_s",
        "stream in-process: deltas/s",
        "≥ 100,000 /s",
        lambda v: v >= 100_000,
    ),
    ("stream.inproc.deltas_received", "  in-process: deltas received (no merge = all)", "", None),
    ("stream.stdio.deltas_per_s", "stream stdio: deltas/s", "≥ 40,000 /s", lambda v: v >= 40_000),
    ("stream.stdio.deltas_received", "  stdio: deltas received", "", None),
    ("stream.stdio.server_cpu_us_per_delta", "  stdio: server CPU per delta", "", None),
    ("stream.ws1.median_client_per_s", "stream WebSocket, 1 client: deltas/s", "", None),
    ("stream.ws1.client.deltas_received", "  WS 1 client: deltas received", "", None),
    ("stream.ws1.server_cpu_us_per_delta_client", "  WS 1 client: server CPU per delta", "", None),
    (
        "stream.ws10.median_client_per_s",
        "stream WebSocket, 10 clients: deltas/s per client (median client)",
        "≥ 25,000 /s",
        lambda v: v >= 25_000,
    ),
    ("stream.ws10.slowest_client_per_s", "  WS 10 clients: slowest client", "", None),
    ("stream.ws10.client.deltas_received", "  WS 10 clients: deltas received", "", None),
    (
        "stream.ws10.server_cpu_us_per_delta_client",
        "  WS 10 clients: server CPU per delta per client",
        "",
        None,
    ),
    (
        "lastbyte.stdio.ms",
        "HTTP model's last byte written → turn/completed received (stdio)",
        "≤ 2 ms",
        lambda v: v <= 2.0,
    ),
    ("lastbyte.ws.ms", "  same, WebSocket", "", None),
    (
        "lastbyte.stdio.to_item_completed_ms",
        "  stdio: of it, last byte → the message's item/completed",
        "",
        None,
    ),
    (
        "stream.stdio.last_delta_to_completed_ms",
        "last delta received → turn/completed received (stdio; scripted model)",
        "≤ 2 ms",
        lambda v: v <= 2.0,
    ),
    (
        "stream.inproc.last_delta_to_completed_ms",
        "  same, in-process",
        "",
        None,
    ),
    ("stream.ws1.client.last_delta_to_completed_ms", "  same, WebSocket", "", None),
    ("slow.fast_vs_solo_pct", "slow reader: fast client vs solo", "≥ 80 %", lambda v: v >= 80),
    ("slow.solo_per_s", "  fast client alone", "", None),
    ("slow.fast_per_s", "  fast client beside the slow one", "", None),
    ("slow.peak_rss_mb", "slow reader: server peak RSS", "< 200 MB", lambda v: v < 200),
]


def table(b: Bench) -> str:
    rows = ["| figure | target | median (min-max) | met |", "|---|---|---|---|"]
    for key, label, target, check in TARGETS:
        f = b.figures.get(key)
        if f is None or not f.runs:
            continue
        digits = 3 if f.unit == "ms" and (f.median or 0) < 10 else 1
        met = "" if check is None or f.median is None else ("yes" if check(f.median) else "NO")
        rows.append(f"| {label} | {target} | {f.text(digits)} | {met} |")
    slow = b.notes.get("slow_reader")
    if slow:
        outcomes = ", ".join(sorted({o["outcome"] for o in slow}))
        rows.append(f"| slow reader: its text | exact or 1008 | {outcomes} | |")
        got = [o["slow_messages"] for o in slow if o.get("slow_messages") is not None]
        if got:
            rows.append(f"|   slow reader: messages it received | | {min(got)}-{max(got)} | |")
    return "\n".join(rows)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    ap.add_argument(
        "--server-cmd",
        help="stdio server command ({home} is replaced by a fresh home directory); "
        "default: python -m appserver serve --stdio --home {home}",
    )
    ap.add_argument("--ws-url", help="an already-running WebSocket server (default: spawn ours)")
    ap.add_argument("--runs", type=int, default=5, help="runs per figure (median, min, max)")
    ap.add_argument("--n", type=int, default=2000, help="requests per sequential/window run")
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--burst", type=int, default=2000)
    ap.add_argument("--deltas", type=int, default=100_000, help="deltas in the streamed turn")
    ap.add_argument("--chunk", default="x", help="text of each streamed delta")
    ap.add_argument(
        "--model-deltas",
        type=int,
        default=200,
        help="deltas per reply of the HTTP model (lastbyte)",
    )
    ap.add_argument("--pace-for-s", type=float, default=20.0, help="slow reader pacing window")
    ap.add_argument(
        "--scale-sizes",
        default="50:10,200:40",
        help="scale phase: two sizes, threads:long_turns each (default 50:10,200:40)",
    )
    ap.add_argument("--only", help=f"comma-separated phases of {','.join(PHASES)}")
    ap.add_argument("--quick", action="store_true", help="3 runs, 500 requests, 20k deltas")
    ap.add_argument("--out", type=Path, help="JSON file (default bench/results/<time>.json)")
    args = ap.parse_args(argv)
    if args.quick:
        args.runs, args.n, args.deltas, args.warmup = 3, 500, 20_000, 50
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    phases = args.only.split(",") if args.only else list(PHASES)
    unknown = set(phases) - set(PHASES)
    if unknown:
        raise SystemExit(f"unknown phases: {sorted(unknown)}")
    if args.server_cmd:
        phases = [
            p
            for p in phases
            if p in ("startup", "firstturn", "requests", "stdio", "lastbyte", "scale")
        ]
        if args.ws_url:
            phases += [p for p in ("ws1", "ws10", "slow") if p in (args.only or ",".join(PHASES))]
    with tempfile.TemporaryDirectory(prefix="appserver-bench-") as tmp:
        b = Bench(args, Path(tmp))
        runners: dict[str, Callable[[], None]] = {
            "startup": lambda: phase_startup(b),
            "firstturn": lambda: phase_firstturn(b),
            "requests": lambda: phase_requests(b),
            "inproc": lambda: phase_inproc(b),
            "stdio": lambda: phase_stdio(b),
            "ws1": lambda: phase_ws(b, 1),
            "ws10": lambda: phase_ws(b, 10),
            "lastbyte": lambda: phase_lastbyte(b),
            "slow": lambda: phase_slow(b),
            "scale": lambda: _scale_phase(b),
        }
        prime = b.spawn_stdio(b.new_home())  # untimed: fills the bytecode cache
        try:
            prime.initialize()
        finally:
            prime.close()
        load_before = os.getloadavg()
        started = time.perf_counter()
        for phase in phases:
            runners[phase]()
        elapsed = time.perf_counter() - started
        report = {
            "when": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine(),
            "server": args.server_cmd or "python -m appserver serve --stdio --home {home}",
            "ws_url": args.ws_url,
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "elapsed_s": round(elapsed, 1),
            # Other work on the machine skews every figure; the 1-minute load says how much.
            "load_avg_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
            "figures": {k: f.as_json() for k, f in b.figures.items()},
            "notes": b.notes,
        }
    out = args.out or RESULTS_DIR / (datetime.datetime.now().strftime("%Y%m%d-%H%M%S") + ".json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    m = report["machine"]
    print(f"\n{m['cpu']}, {m['cores']} cores, Python {m['python']}, uvloop {m['uvloop']}")
    load = report["load_avg_1m"]
    print(f"server: {report['server']}   ({elapsed:.0f} s)")
    print(f"load average (1 min): {load['before']:.2f} before, {load['after']:.2f} after\n")
    print(table(b))
    scale = b.notes.get("scale") or {}
    if scale.get("table"):
        print("\nscale (growth exponent: 0 flat, 1 linear):\n" + scale["table"])
    print(f"\nJSON: {out}")


if __name__ == "__main__":
    main()
