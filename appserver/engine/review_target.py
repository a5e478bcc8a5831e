"""What a review looks at: ``review/start``'s target turned into the prompt, the hint clients
show (``enteredReviewMode.review``), and the diff, read with ``git`` in the thread's cwd.

Owns the four targets (``uncommittedChanges``, ``baseBranch``, ``commit``, ``custom``) with the
reference's hints (``current changes``, ``changes against 'main'``, ``commit abc1234: title``)
and prompts, and running ``git`` (a subprocess, bounded in time and output). A directory that
is not a git repository, an unknown branch or an unknown commit is a ``TargetError`` (the
caller's -32600), found before any turn starts. It must never let a repository run code of its
own: external diff drivers, textconv filters and fsmonitor hooks are switched off, and git
never prompts.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appserver.engine.errors import EngineError

GIT_TIMEOUT_S = 10.0
MAX_DIFF_CHARS = 256 * 1024
MAX_UNTRACKED_FILES = 200

UNCOMMITTED_PROMPT = (
    "Review the current code changes (staged, unstaged, and untracked files) and provide "
    "prioritized findings."
)
_GIT_CONFIG = ("-c", "core.fsmonitor=false", "-c", "core.quotepath=off", "-c", "color.ui=never")
_DIFF_FLAGS = ("--no-ext-diff", "--no-textconv", "--no-color")


class TargetError(EngineError):
    """The target cannot be reviewed (the message is for the client: -32600)."""


@dataclass(frozen=True)
class ReviewRequest:
    hint: str  # what clients show: enteredReviewMode.review, the userMessage text
    prompt: str  # the user message the reviewer model gets (with the diff)


@dataclass(frozen=True)
class GitResult:
    code: int
    out: str
    err: str


async def git(cwd: Path, *args: str) -> GitResult:
    """Run ``git`` in ``cwd``; a missing git or a timeout is a ``TargetError``."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/"),
        "LC_ALL": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_OPTIONAL_LOCKS": "0",
    }
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *_GIT_CONFIG,
            *args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise TargetError("cannot review: `git` is not installed on the server") from None
    try:
        out, err = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT_S)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise TargetError(
            f"cannot review: `git {args[0]}` took over {GIT_TIMEOUT_S:.0f} s"
        ) from None
    code = proc.returncode if proc.returncode is not None else -1
    return GitResult(code, out.decode(errors="replace"), err.decode(errors="replace").strip())


async def _repo_root(cwd: Path) -> Path:
    if not cwd.is_dir():
        raise TargetError(f"cannot review `{cwd}`: the directory does not exist")
    found = await git(cwd, "rev-parse", "--show-toplevel")
    if found.code != 0 and "dubious ownership" in found.err:
        # Another user's repository: git itself refuses it (``safe.directory``).
        raise TargetError(f"cannot review `{cwd}`: git refuses a repository owned by another user")
    if found.code != 0:
        raise TargetError(f"cannot review `{cwd}`: not a git repository")
    return Path(found.out.strip())


async def _has_head(root: Path) -> bool:
    return (await git(root, "rev-parse", "--verify", "--quiet", "HEAD")).code == 0


async def uncommitted_diff(root: Path) -> str:
    """Staged, unstaged and untracked changes against HEAD (or against nothing, in a
    repository without commits)."""
    if await _has_head(root):
        parts = [(await git(root, "diff", *_DIFF_FLAGS, "HEAD", "--")).out]
    else:
        parts = [
            (await git(root, "diff", *_DIFF_FLAGS, "--cached", "--")).out,
            (await git(root, "diff", *_DIFF_FLAGS, "--")).out,
        ]
    listed = await git(root, "ls-files", "--others", "--exclude-standard", "-z")
    untracked = [p for p in listed.out.split("\0") if p][:MAX_UNTRACKED_FILES]
    for path in untracked:
        # Exit code 1 means "they differ", which a new file always does.
        shown = await git(root, "diff", *_DIFF_FLAGS, "--no-index", "--", os.devnull, path)
        parts.append(shown.out)
    return "".join(parts)


def _bounded(diff: str) -> str:
    if len(diff) <= MAX_DIFF_CHARS:
        return diff
    rest = len(diff) - MAX_DIFF_CHARS
    return diff[:MAX_DIFF_CHARS] + f"\n[diff truncated: {rest} more characters]\n"


def _with_diff(prompt: str, diff: str) -> str:
    if not diff.strip():
        return prompt + "\n\nThere are no changes to review in the diff (it is empty)."
    return f"{prompt}\n\nThe diff, as `git` shows it:\n\n```diff\n{_bounded(diff)}```"


async def resolve(target: dict[str, Any], cwd: Path) -> ReviewRequest:
    """The review of ``target`` in ``cwd``: its hint and its prompt with the diff."""
    kind = target.get("type")
    if kind == "custom":
        instructions = target.get("instructions")
        if not isinstance(instructions, str) or not instructions.strip():
            raise TargetError("custom review instructions must not be empty")
        return ReviewRequest(hint=instructions.strip(), prompt=instructions.strip())
    if kind == "uncommittedChanges":
        root = await _repo_root(cwd)
        diff = await uncommitted_diff(root)
        return ReviewRequest("current changes", _with_diff(UNCOMMITTED_PROMPT, diff))
    if kind == "baseBranch":
        branch = target.get("branch")
        if not isinstance(branch, str) or not branch.strip() or branch.startswith("-"):
            raise TargetError("baseBranch review: `branch` must name a branch")
        root = await _repo_root(cwd)
        if not await _has_head(root):
            raise TargetError("baseBranch review: the repository has no commits yet")
        found = await git(root, "rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}")
        if found.code != 0:
            raise TargetError(f"unknown branch `{branch[:100]}`")
        base = await git(root, "merge-base", "HEAD", branch)
        if base.code != 0:
            raise TargetError(f"`{branch[:100]}` has no common history with HEAD")
        merge_base = base.out.strip()
        diff = (await git(root, "diff", *_DIFF_FLAGS, merge_base, "--")).out
        prompt = (
            f"Review the code changes against the base branch '{branch}'. The merge base "
            f"commit for this comparison is {merge_base}. Provide prioritized, actionable "
            "findings."
        )
        return ReviewRequest(f"changes against '{branch}'", _with_diff(prompt, diff))
    if kind == "commit":
        sha = target.get("sha")
        if not isinstance(sha, str) or not sha.strip() or sha.startswith("-"):
            raise TargetError("commit review: `sha` must name a commit")
        root = await _repo_root(cwd)
        found = await git(root, "rev-parse", "--verify", "--quiet", f"{sha}^{{commit}}")
        if found.code != 0:
            raise TargetError(f"unknown commit `{sha[:100]}`")
        full = found.out.strip()
        given = target.get("title")
        title = given.strip() if isinstance(given, str) else ""
        if not title:
            title = (await git(root, "log", "-1", "--format=%s", full)).out.strip()
        shown = await git(root, "show", *_DIFF_FLAGS, "--format=medium", full, "--")
        prompt = f"Review the code changes introduced by commit {full}"
        prompt += f' ("{title}").' if title else "."
        prompt += " Provide prioritized, actionable findings."
        hint = f"commit {full[:7]}: {title}" if title else f"commit {full[:7]}"
        return ReviewRequest(hint, _with_diff(prompt, shown.out))
    raise TargetError(
        f"unknown review target type `{str(kind)[:100]}`, expected one of `uncommittedChanges`, "
        "`baseBranch`, `commit`, `custom`"
    )
