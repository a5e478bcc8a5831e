"""``fuzzyFileSearch`` on a 100,000-file tree: the time from request to reply.

Run from the repository root: ``python -m bench.fuzzy_search [--files N] [--runs R]``.
Builds a tree of ``N`` files (default 100,000: 400 directories of 250 files, under
``pkg_<i>/mod_<j>/``, plus an ignored ``build/`` of 10,000 more that ``.gitignore`` hides),
starts the server in-process, and times ``fuzzyFileSearch`` requests end to end (params
validation, boundary, listing, matching, reply) for a few queries, first as a plain directory
(the walk with ``.gitignore`` rules), then as a git work tree (``git ls-files``, files
untracked); each cold (the listing made again for every request) and warm (the listing
reused, as for the requests of one typed query). Prints the median, min and max of ``R``
runs per query. Nothing sleeps; every
request has a timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from appserver.host import fuzzy
from appserver.server.app import start_in_process

QUERIES = ["mod17file42", "pkg3", "zzzzqqq", "f_9.py"]


def build_tree(top: Path, files: int) -> None:
    per_dir = 250
    dirs = max(1, files // per_dir)
    for d in range(dirs):
        here = top / f"pkg_{d // 20}" / f"mod_{d % 20}"
        here.mkdir(parents=True)
        for f in range(per_dir):
            (here / f"file{f}_{d}.py").touch()
    ignored = top / "build"
    ignored.mkdir()
    for f in range(10_000):
        (ignored / f"obj{f}.o").touch()
    (top / ".gitignore").write_text("build/\n")


async def time_queries(root: Path, runs: int, cold: bool) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as home:
        client = await start_in_process(home)
        out: dict[str, list[float]] = {}
        try:
            for query in QUERIES:
                times: list[float] = []
                for _ in range(runs):
                    if cold:
                        fuzzy._cache.clear()  # list the tree again (else reused for 3 s)
                    started = time.perf_counter()
                    result: Any = await asyncio.wait_for(
                        client.request("fuzzyFileSearch", {"query": query, "roots": [str(root)]}),
                        60,
                    )
                    times.append(time.perf_counter() - started)
                    assert len(result["files"]) <= 50
                out[query] = times
        finally:
            await client.shutdown()
    return out


def report(title: str, results: dict[str, list[float]]) -> None:
    print(title)
    for query, times in results.items():
        ms = [t * 1000 for t in times]
        print(
            f"  {query!r:16} median {statistics.median(ms):7.1f} ms"
            f"  (min {min(ms):.1f}, max {max(ms):.1f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        root.mkdir()
        started = time.perf_counter()
        build_tree(root, args.files)
        print(f"tree: {args.files} files (+10000 ignored) in {time.perf_counter() - started:.1f} s")
        for kind in ("plain directory (walk + .gitignore)", "git work tree (git ls-files)"):
            if kind.startswith("git"):
                subprocess.run(["git", "init", "-q", str(root)], check=True)
            for cold in (True, False):
                results = asyncio.run(time_queries(root, args.runs, cold))
                report(
                    f"{kind}, {'cold: listed each time' if cold else 'warm: listing reused'}:",
                    results,
                )


if __name__ == "__main__":
    main()
