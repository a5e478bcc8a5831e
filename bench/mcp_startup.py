"""A slow MCP server must not delay ``thread/start`` (``python -m bench.mcp_startup``).

Owns one figure: our server (``serve --stdio``, fresh home) configured with one stdio MCP
server that sleeps 8 s before it serves (``bench/mcp_slow_server.py``). Each run sends a
first ``thread/start`` (it loads the engine, and starts the MCP server in the background),
then times, at the client, a second ``thread/start`` request → response (the MCP server is
still asleep) and → ``mcpServer/startupStatus/updated`` ``ready`` (for scale); then the same
with no MCP server configured, as the baseline. It prints a table and one JSON line. It must
never run in the test suite, never talk to anything but loopback and its own child processes,
and never sleep to synchronise: every wait is a bounded read of the server's output.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SLOW_SERVER = Path(__file__).resolve().parent / "mcp_slow_server.py"


class Client:
    def __init__(self, home: Path) -> None:
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appserver", "serve", "--stdio", "--home", str(home)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.next_id = 0

    def send(self, method: str, params: Any) -> int:
        self.next_id += 1
        assert self.proc.stdin is not None
        line = json.dumps({"id": self.next_id, "method": method, "params": params}) + "\n"
        self.proc.stdin.write(line.encode())
        self.proc.stdin.flush()
        return self.next_id

    def read_until(self, pred: Any, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server exited")
            msg: dict[str, Any] = json.loads(line)
            if pred(msg):
                return msg
        raise TimeoutError("no matching message")

    def call(self, method: str, params: Any) -> dict[str, Any]:
        rid = self.send(method, params)
        return self.read_until(lambda m: m.get("id") == rid and "method" not in m)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def one_run(with_mcp: bool, delay_s: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        if with_mcp:
            (home / "config.toml").write_text(
                "[mcp_servers.slow]\n"
                f"command = {json.dumps(sys.executable)}\n"
                f"args = [{json.dumps(str(SLOW_SERVER))}]\n"
                "startup_timeout_sec = 30\n"
                f'env = {{ MCP_BENCH_DELAY_S = "{delay_s:g}" }}\n',
                encoding="utf-8",
            )
        client = Client(home)
        try:
            client.call("initialize", {"clientInfo": {"name": "bench", "version": "0"}})
            client.call("thread/start", {"cwd": tmp})  # warm: imports done
            start = time.perf_counter()
            client.call("thread/start", {"cwd": tmp})
            out = {"thread_start_ms": (time.perf_counter() - start) * 1000}
            if with_mcp:
                client.read_until(
                    lambda m: (
                        m.get("method") == "mcpServer/startupStatus/updated"
                        and m["params"]["status"] == "ready"
                    ),
                    timeout=delay_s + 30,
                )
                out["ready_s"] = time.perf_counter() - start
            return out
        finally:
            client.close()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.mcp_startup", description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--delay", type=float, default=8.0, help="seconds the MCP server sleeps")
    args = ap.parse_args(argv)
    slow = [one_run(True, args.delay) for _ in range(args.runs)]
    base = [one_run(False, args.delay) for _ in range(args.runs)]

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    result = {
        "runs": args.runs,
        "mcp_delay_s": args.delay,
        "thread_start_ms_with_slow_mcp": med(slow, "thread_start_ms"),
        "thread_start_ms_without_mcp": med(base, "thread_start_ms"),
        "mcp_ready_s": med(slow, "ready_s"),
        "all": {"slow": slow, "base": base},
    }
    print(
        f"thread/start with an MCP server that sleeps {args.delay:g} s: "
        f"{result['thread_start_ms_with_slow_mcp']:.1f} ms (median of {args.runs})"
    )
    print(
        f"thread/start with no MCP server:                      "
        f"{result['thread_start_ms_without_mcp']:.1f} ms"
    )
    print(f"that MCP server ready after:                          {result['mcp_ready_s']:.2f} s")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
