"""``fuzzyFileSearch``: the files and directories under some roots whose path matches a query.

Owns listing a root and scoring paths. Listing: inside a git work tree, ``git ls-files
--cached --others --exclude-standard`` (git's own ``.gitignore`` rules, and its index makes it
fast); elsewhere a walk with ``os.scandir`` that follows no link, skips ``.git`` and applies
every ``.gitignore`` it meets with ``pathspec``'s git-compatible rules. Directories are
candidates too (``match_type: "directory"``). Both stop early when the caller's ``cancelled``
flag is set, and a listing is bounded (``MAX_CANDIDATES``).

Matching is a subsequence match (each query character in order; case-insensitive unless
the query has an upper-case letter; spaces ignored), prefiltered by one compiled regular
expression so most paths cost a single C-level search. Matches are scored like fzf's v1:
points per character, bonuses after a separator or at a camelCase hump, for consecutive
characters and for landing in the file name, a small penalty per gap; ``indices`` are the
matched character positions in ``path``. To stay fast when most paths match, only the
``SCORED`` (2,000) tightest matches are scored in full. The best ``limit`` (50) are
returned, best first.
A root's listing is reused for three seconds (a client searches once per keystroke).

It must never read a file's content and never follow a link out of a root.
"""

from __future__ import annotations

import heapq
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pathspec

if TYPE_CHECKING:
    from appserver.protocol.wire_types import FuzzyFileSearchResult

__all__ = ["DEFAULT_LIMIT", "MAX_CANDIDATES", "SCORED", "Listing", "Match", "list_root", "search"]

DEFAULT_LIMIT = 50
MAX_CANDIDATES = 2_000_000
_GIT_TIMEOUT_S = 30
_SEPARATORS = frozenset("/_-. ")

_SCORE_MATCH = 16
_BONUS_BOUNDARY = 8
_BONUS_CAMEL = 7
_BONUS_CONSECUTIVE = 4
_BONUS_FIRST = 8
_BONUS_FILE_NAME = 2
_PENALTY_GAP = 1
_MAX_GAP_PENALTY = 12


@dataclass(frozen=True, slots=True)
class Match:
    root: str
    path: str
    is_dir: bool
    score: int
    indices: tuple[int, ...]

    def wire(self) -> FuzzyFileSearchResult:
        return {
            "root": self.root,
            "path": self.path,
            "match_type": "directory" if self.is_dir else "file",
            "file_name": os.path.basename(self.path),
            "score": self.score,
            "indices": list(self.indices),
        }


class Cancelled(Exception):
    pass


# -- listing -------------------------------------------------------------------------------------


def _git_listing(root: str, cancelled: threading.Event) -> list[tuple[str, bool]] | None:
    """Paths (relative, with directories) from git, or None when ``root`` is not in a work
    tree or git is unavailable."""
    try:
        done = subprocess.run(
            # No fsmonitor hook: a repository's own config must not run a program here.
            [
                *("git", "-c", "core.fsmonitor=false", "-C", root, "ls-files", "-z"),
                *("--cached", "--others", "--exclude-standard"),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    if cancelled.is_set():
        raise Cancelled
    out: list[tuple[str, bool]] = []
    dirs: set[str] = set()
    for raw in done.stdout.split(b"\0"):
        if not raw:
            continue
        path = os.fsdecode(raw)
        out.append((path, False))
        parent = os.path.dirname(path)
        while parent and parent not in dirs:
            dirs.add(parent)
            parent = os.path.dirname(parent)
        if len(out) >= MAX_CANDIDATES:
            break
    out.extend((d, True) for d in dirs)
    return out


_Rules = list[tuple[str, list[tuple[re.Pattern[str], bool]]]]  # (base, [(regex, ignore)])


def _rules(lines: list[str]) -> list[tuple[re.Pattern[str], bool]]:
    """A ``.gitignore``'s patterns compiled by ``pathspec`` (git's rules), kept as
    (regex, ignores) pairs so checking a path is one ``match`` per pattern."""
    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    out: list[tuple[re.Pattern[str], bool]] = []
    for pattern in spec.patterns:
        include = getattr(pattern, "include", None)
        regex = getattr(pattern, "regex", None)
        if include is not None and isinstance(regex, re.Pattern):
            out.append((regex, bool(include)))
    return out


def _walk(root: str, cancelled: threading.Event) -> Iterator[tuple[str, bool]]:
    # (directory relative to root, the .gitignore rules in force there with their base)
    stack: list[tuple[str, _Rules]] = [("", [])]
    count = 0
    while stack:
        rel, rules = stack.pop()
        if cancelled.is_set():
            raise Cancelled
        here = os.path.join(root, rel) if rel else root
        try:
            with os.scandir(here) as it:
                entries = list(it)
        except OSError:
            continue
        if any(e.name == ".gitignore" for e in entries):
            try:
                with open(
                    os.path.join(here, ".gitignore"), encoding="utf-8", errors="replace"
                ) as f:
                    compiled = _rules(f.read().splitlines())
                if compiled:
                    rules = [*rules, (rel, compiled)]
            except OSError:
                pass
        for entry in entries:
            if entry.name == ".git":
                continue
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                continue
            path = f"{rel}/{entry.name}" if rel else entry.name
            if rules and _ignored(path, is_dir, rules):
                continue
            yield path, is_dir
            count += 1
            if count >= MAX_CANDIDATES:
                return
            if is_dir:
                stack.append((path, rules))


def _ignored(path: str, is_dir: bool, rules: _Rules) -> bool:
    """git's rule: the last pattern that matches decides; deeper files come later."""
    ignored = False
    for base, compiled in rules:
        local = path[len(base) + 1 :] if base else path
        candidate = local + "/" if is_dir else local
        for regex, ignores in compiled:
            if regex.match(candidate) is not None:
                ignored = ignores
    return ignored


SCORED = 2_000
_CACHE_TTL_S = 3.0


@dataclass(frozen=True)
class Listing:
    """A root's candidates: relative paths, the same lower-cased, and which are
    directories (parallel lists, so a search walks them without building tuples)."""

    paths: list[str]
    folded: list[str]
    dirs: list[bool]

    @classmethod
    def of(cls, entries: list[tuple[str, bool]]) -> Listing:
        paths = [p for p, _ in entries]
        folded = [p.lower() for p in paths]
        # A path whose lower-casing changes its length cannot map indices: matched as is.
        folded = [f if len(f) == len(p) else p for f, p in zip(folded, paths, strict=True)]
        return cls(paths, folded, [d for _, d in entries])


_cache: dict[str, tuple[float, Listing]] = {}
_cache_lock = threading.Lock()


def list_root(root: str, cancelled: threading.Event) -> Listing:
    """Every candidate under ``root``. A listing is reused for ``_CACHE_TTL_S`` seconds: a
    client sends one search per keystroke."""
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(root)
        if cached is not None and now - cached[0] < _CACHE_TTL_S:
            return cached[1]
    entries = _git_listing(root, cancelled)
    if entries is None:
        entries = list(_walk(root, cancelled))
    listing = Listing.of(entries)
    with _cache_lock:
        for key in [k for k, (at, _) in _cache.items() if now - at >= _CACHE_TTL_S]:
            del _cache[key]
        _cache[root] = (now, listing)
    return listing


# -- matching ------------------------------------------------------------------------------------


def _tight_start(query: str, folded: str, end: int) -> int:
    """fzf v1's backward scan: the latest start of a match ending at ``end`` (C-level
    ``rfind`` per query character); -1 on a case-folding oddity."""
    start = end + 1
    for qi in range(len(query) - 1, -1, -1):
        start = folded.rfind(query[qi], 0, start)
    return start


def score_path(query: str, path: str, folded: str, start: int) -> tuple[int, tuple[int, ...]]:
    """Score ``path`` for ``query`` (case-folded as ``folded`` is) from the tight match's
    ``start``: a forward pass takes each character's first position, then points per
    character, bonuses and gap penalties as in the module docstring."""
    indices: list[int] = []
    at = start
    for ch in query:
        found = folded.find(ch, at)
        at = found if found >= 0 else at
        indices.append(at)
        at += 1
    name_start = path.rfind("/") + 1
    score = 0
    prev = -2
    for i in indices:
        score += _SCORE_MATCH
        if i == 0:
            score += _BONUS_FIRST
        else:
            before = path[i - 1]
            if before in _SEPARATORS:
                score += _BONUS_BOUNDARY
            elif before.islower() and path[i].isupper():
                score += _BONUS_CAMEL
        if i == prev + 1:
            score += _BONUS_CONSECUTIVE
        elif prev >= 0:
            gap = (i - prev - 1) * _PENALTY_GAP
            score -= gap if gap < _MAX_GAP_PENALTY else _MAX_GAP_PENALTY
        if i >= name_start:
            score += _BONUS_FILE_NAME
        prev = i
    return (score if score > 0 else 0), tuple(indices)


def search(
    query: str,
    roots: list[str],
    cancelled: threading.Event,
    limit: int = DEFAULT_LIMIT,
) -> list[Match]:
    """The best ``limit`` matches of ``query`` under ``roots`` (resolved, checked).

    Two passes: every path the prefilter matches gets its tight match span (cheap); only the
    ``SCORED`` tightest (shortest span, then shortest path) are scored in full. A high score
    needs a compact match, so the best ones are among them."""
    needle = "".join(query.split())
    if not needle:
        return []
    sensitive = needle != needle.lower()
    folded_query = needle if sensitive else needle.lower()
    pattern = re.compile(
        ".*?".join(re.escape(c) for c in folded_query), 0 if sensitive else re.IGNORECASE
    )
    # (span, path length, order, root, path, folded, start, is_dir)
    spans: list[tuple[int, int, int, str, str, str, int, bool]] = []
    order = 0
    search_fn = pattern.search
    for root in roots:
        listing = list_root(root, cancelled)
        paths, folded_paths, dirs = listing.paths, listing.folded, listing.dirs
        for n, path in enumerate(paths):
            if n % 8192 == 0 and cancelled.is_set():
                raise Cancelled
            found = search_fn(path)
            if found is None:
                continue
            folded = path if sensitive else folded_paths[n]
            end = found.end() - 1
            start = _tight_start(folded_query, folded, end)
            if start < 0:
                start = found.start()
            order += 1
            spans.append((end - start, len(path), order, root, path, folded, start, dirs[n]))
    if len(spans) > SCORED:
        spans = heapq.nsmallest(SCORED, spans)
    scored: list[tuple[int, int, int, Match]] = []
    for _, length, order, root, path, folded, start, is_dir in spans:
        score, indices = score_path(folded_query, path, folded, start)
        scored.append((-score, length, order, Match(root, path, is_dir, score, indices)))
    return [m for *_, m in heapq.nsmallest(limit, scored)]
