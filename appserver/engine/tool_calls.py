"""Running the model's tool calls: shell commands, patches and plan updates, with approvals.

Owns the policy decisions (when to ask, what a decision means) and the items each call
becomes (``commandExecution``, ``fileChange``) with their notifications. It reaches the rest
of the turn through ``TurnOps`` (emit, record, ask). Commands run with the environment and
time limit of ``ops.commands`` (``CommandPolicy``: the server's environment minus every
credential, 10 s unless the model asks for longer, capped). It must never
apply a patch that writes outside the writable roots, or run a command unconfined, without an
explicit approval.
"""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

import orjson

from appserver.engine import views
from appserver.engine.providers.events import ToolCall
from appserver.engine.thread_state import ActiveTurn, LoadedThread, now_ms
from appserver.engine.tool_specs import APPLY_PATCH, SHELL, UPDATE_PLAN, enabled_names
from appserver.engine.tools import bash_parse, command_safety, sandbox, shell
from appserver.engine.tools import patch as patches
from appserver.engine.tools.command_policy import CommandPolicy

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import CommandApprovalRequest, TurnIds
    from appserver.protocol.wire_types import (
        Ask,
        FileChangeRequestApprovalParams,
        Notify,
        TurnPlanStep,
    )


class TurnCancelled(Exception):
    """The user answered ``cancel``: decline and interrupt the turn."""


class TurnOps(Protocol):
    thread: LoadedThread
    turn: ActiveTurn
    commands: CommandPolicy  # the environment and time limit of commands
    protected_paths: tuple[Path, ...]  # never read by a command that runs without asking

    @property
    def emit(self) -> Notify: ...  # a notification to the thread, params typed by method

    def record_item(self, item: dict[str, Any]) -> None: ...

    @property
    def ask(self) -> Ask: ...  # a server request to the thread, params typed by method


@dataclass(frozen=True)
class Decision:
    kind: str  # accept | acceptForSession | decline | cancel
    amendment: list[str] | None = None


def parse_decision(result: Any) -> Decision:
    """A client's answer; anything unreadable counts as a decline (spec §3.15)."""
    value = result.get("decision") if isinstance(result, dict) else None
    if value in ("accept", "acceptForSession", "decline", "cancel"):
        return Decision(value)
    if isinstance(value, dict) and "acceptWithExecpolicyAmendment" in value:
        inner = value["acceptWithExecpolicyAmendment"]
        prefix = inner.get("execpolicy_amendment") if isinstance(inner, dict) else None
        return Decision("acceptForSession", prefix if isinstance(prefix, list) else None)
    return Decision("decline")


async def execute(ops: TurnOps, call: ToolCall) -> str:
    """Run one call and return the text given back to the model as its output. A call to a
    tool this thread does not offer (its ``config`` switched it off) is refused unrun, with
    the reference's output text."""
    if call.name not in enabled_names(ops.thread.settings.tools):
        return f"unsupported call: {call.name}"
    if call.name == SHELL:
        return await _shell(ops, call)
    if call.name == APPLY_PATCH:
        return await _apply_patch(ops, call)
    if call.name == UPDATE_PLAN:
        return await _update_plan(ops, call)
    return f"unknown tool: {call.name}"


def _arguments(call: ToolCall) -> dict[str, Any]:
    if call.kind == "custom":
        return {"input": call.arguments}
    try:
        args = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return args if isinstance(args, dict) else {}


def _ids(ops: TurnOps) -> TurnIds:
    return views.turn_ids(ops.thread, ops.turn)


# -- shell ------------------------------------------------------------------------------------


def _needs_approval(ops: TurnOps, command: str, confined: bool, cwd: Path) -> bool:
    """Whether to ask before running ``command`` in ``cwd``.

    ``confined`` is False only for a restricted sandbox mode without a sandbox here (no
    working backend): such a command is asked about rather than run unconfined, even a known-safe
    one under ``untrusted`` (approval ``never`` refuses it before this is consulted). The one
    exception is a command the client accepted for the session, which runs as accepted.
    """
    if command in ops.thread.approved_commands or _prefix_approved(ops, command):
        return False
    if not confined:
        return True
    if ops.thread.settings.approval_policy == "untrusted":
        return not command_safety.is_known_safe(command, cwd=cwd, protected=ops.protected_paths)
    return False


def _prefix_approved(ops: TurnOps, command: str) -> bool:
    """Whether an accepted execpolicy prefix covers ``command``: only a single plain command
    (no operator, no expansion) whose literal words start with the prefix."""
    prefixes = ops.thread.approved_prefixes
    if not prefixes:
        return False
    words = bash_parse.simple_command_words(command)
    return words is not None and any(tuple(words[: len(p)]) == p for p in prefixes)


def _approve_for_session(ops: TurnOps, command: str, decision: Decision) -> None:
    ops.thread.approved_commands.add(command)
    prefix = decision.amendment
    if prefix and all(isinstance(word, str) for word in prefix):  # never an empty prefix
        ops.thread.approved_prefixes.add(tuple(prefix))


async def _shell(ops: TurnOps, call: ToolCall) -> str:
    args = _arguments(call)
    command = args.get("command")
    if isinstance(command, list):
        command = " ".join(str(c) for c in command)
    if not isinstance(command, str) or not command.strip():
        return "shell_command failed: `command` must be a non-empty string"
    settings = ops.thread.settings
    workdir = args.get("workdir")
    cwd = (
        Path(settings.cwd) / workdir if isinstance(workdir, str) and workdir else Path(settings.cwd)
    )
    timeout_ms = ops.commands.timeout_ms(args.get("timeout_ms"))
    argv = shell.shell_argv(command)
    # Shown as the reference shows it: the shell invocation really run (``bash -c SCRIPT``,
    # quoted as a POSIX shell would read it back); ``commandActions`` and every approval and
    # safety check read the inner script.
    display = shlex.join(argv)
    policy = sandbox.SandboxPolicy.from_dict(settings.sandbox_policy)
    # Roots are the thread's: a `workdir` elsewhere is where the command starts, not a root.
    wrapped = sandbox.wrap_command(argv, policy, Path(settings.cwd), chdir=cwd)
    item: dict[str, Any] = {
        "type": "commandExecution",
        "id": call.call_id,
        "command": display,
        "cwd": str(cwd),
        "processId": None,
        "source": "agent",
        "status": "inProgress",
        "commandActions": shell.command_actions(command),
        "aggregatedOutput": None,
        "exitCode": None,
        "durationMs": None,
    }
    await ops.emit("item/started", views.item_started(ops.thread, ops.turn, item))
    if wrapped is None and settings.approval_policy == "never":
        return await _finish_declined(
            ops,
            item,
            "command refused: no sandbox (bubblewrap or Landlock) is available and the approval "
            "policy is `never`, so it cannot run confined or be approved",
        )
    if _needs_approval(ops, command, wrapped is not None, cwd):
        decision = await _ask_command(ops, item, command, cwd, reason=None)
        if decision.kind in ("decline", "cancel"):
            await _finish_declined(ops, item, "rejected by user")
            if decision.kind == "cancel":
                raise TurnCancelled
            return "exec_command failed: command rejected by user"
        if decision.kind == "acceptForSession":
            _approve_for_session(ops, command, decision)
    if wrapped is None:
        # No sandbox here, and the client accepted this command just now or for the session
        # (`_needs_approval` asks about every other unconfined command): run it as accepted.
        wrapped = argv
    result = await _run(ops, item, wrapped, cwd, timeout_ms)
    if (
        settings.approval_policy == "on-failure"
        and result.exit_code not in (0, None)
        and wrapped is not argv
    ):
        decision = await _ask_command(
            ops, item, command, cwd, reason="command failed in the sandbox; run it unconfined?"
        )
        if decision.kind == "cancel":
            await _finish_declined(ops, item, "rejected by user")
            raise TurnCancelled
        if decision.kind in ("accept", "acceptForSession"):
            result = await _run(ops, item, argv, cwd, timeout_ms)
    item.update(
        status="completed" if result.exit_code == 0 else "failed",
        aggregatedOutput=result.output,
        exitCode=result.exit_code,
        durationMs=result.duration_ms,
    )
    await _complete(ops, item)
    suffix = " (timed out)" if result.timed_out else ""
    return (
        f"Exit code: {result.exit_code}{suffix}\n"
        f"Wall time: {result.duration_ms / 1000:.1f} seconds\nOutput:\n{result.output}"
    )


async def _ask_command(
    ops: TurnOps, item: dict[str, Any], command: str, cwd: Path, reason: str | None
) -> Decision:
    """Ask the client about a command, in the reference server's shape.

    Like Codex 0.169.0 (``transcript-approval.jsonl``): ``kind`` and ``environmentId`` are
    always sent, ``reason`` only when there is one, and ``availableDecisions`` lists accept,
    accept with the proposed execpolicy amendment (the command's words; a compound command
    has none and is offered ``acceptForSession`` instead), and cancel (``decline`` is not
    offered but still understood, as it is by the reference).
    """
    # As the reference proposes it: the command's words, for a plain command; a compound one
    # gets no prefix to approve (its words could hide a second command).
    amendment = bash_parse.simple_command_words(command)
    params: CommandApprovalRequest = {
        "kind": "command",
        "threadId": ops.thread.id,
        "turnId": ops.turn.id,
        "itemId": item["id"],
        "startedAtMs": now_ms(),
        "environmentId": "local",
    }
    if reason is not None:
        params["reason"] = reason
    params["command"] = item["command"]  # the invocation run; the amendment: the script's words
    params["cwd"] = str(cwd)
    params["commandActions"] = item["commandActions"]
    params["proposedExecpolicyAmendment"] = amendment
    params["availableDecisions"] = [
        "accept",
        {"acceptWithExecpolicyAmendment": {"execpolicy_amendment": amendment}}
        if amendment is not None
        else "acceptForSession",
        "cancel",
    ]
    return parse_decision(await ops.ask("item/commandExecution/requestApproval", params))


async def _run(
    ops: TurnOps, item: dict[str, Any], argv: list[str], cwd: Path, timeout_ms: int | None
) -> shell.CommandResult:
    ids = _ids(ops)

    async def on_output(text: str) -> None:
        await ops.emit(
            "item/commandExecution/outputDelta", {**ids, "itemId": item["id"], "delta": text}
        )

    def on_start(pid: int) -> None:
        item["processId"] = str(pid)

    if not cwd.is_dir():
        return shell.CommandResult(None, f"working directory does not exist: {cwd}", 0)
    return await shell.run_command(
        argv,
        cwd=cwd,
        timeout_ms=timeout_ms,
        on_output=on_output,
        on_start=on_start,
        env=ops.commands.env(),
    )


async def _finish_declined(ops: TurnOps, item: dict[str, Any], why: str) -> str:
    item.update(status="declined", aggregatedOutput=None, exitCode=None)
    await _complete(ops, item)
    return f"exec_command failed: {why}"


async def _complete(ops: TurnOps, item: dict[str, Any]) -> None:
    ops.record_item(item)
    await ops.emit(
        "item/completed",
        views.item_completed(ops.thread, ops.turn, dict(item)),
    )


# -- apply_patch ------------------------------------------------------------------------------


async def _apply_patch(ops: TurnOps, call: ToolCall) -> str:
    text = _arguments(call).get("input")
    if not isinstance(text, str):
        return "apply_patch failed: `input` must be the patch text"
    settings = ops.thread.settings
    cwd = Path(settings.cwd)
    try:
        changes = await asyncio.to_thread(patches.plan_patch, text, cwd)
    except patches.PatchError as exc:
        return f"apply_patch failed: {exc}"
    item: dict[str, Any] = {
        "type": "fileChange",
        "id": call.call_id,
        "changes": patches.to_v2_changes(changes),
        "status": "inProgress",
    }
    await ops.emit("item/started", views.item_started(ops.thread, ops.turn, item))
    policy = sandbox.SandboxPolicy.from_dict(settings.sandbox_policy)
    # Judged where each file will really be written (its directory resolved when planned):
    # inside a root both as written (the directory entry that changes) and once resolved (a
    # final link). The write goes exactly there, following no link, and asks `may_write`
    # again right before each file changes (patch.apply_planned).
    roots = sandbox.writable_roots(policy, cwd)

    def in_roots(path: str) -> bool:
        where = Path(path)
        return any(where == r or where.is_relative_to(r) for r in roots)

    targets = [(c.path, c.write_target) for c in changes] + [
        (c.move_path, c.write_move_target or c.move_path) for c in changes if c.move_path
    ]
    outside_targets = {
        t for _, t in targets if not (in_roots(t) and sandbox.is_path_writable(t, policy, cwd))
    }
    outside = [p for p, t in targets if t in outside_targets]
    approved: frozenset[str] = frozenset()
    approval = settings.approval_policy
    if approval == "never" and outside:
        item["status"] = "failed"
        await _complete(ops, item)
        return "apply_patch failed: the patch writes outside the writable roots: " + ", ".join(
            outside
        )
    ask = bool(outside) or (approval == "untrusted" and not ops.thread.patches_approved_for_session)
    if ask:
        params: FileChangeRequestApprovalParams = {
            "threadId": ops.thread.id,
            "turnId": ops.turn.id,
            "itemId": item["id"],
            "startedAtMs": now_ms(),
            "reason": "writes outside the writable roots" if outside else None,
            "grantRoot": None,
        }
        decision = parse_decision(await ops.ask("item/fileChange/requestApproval", params))
        if decision.kind in ("decline", "cancel"):
            item["status"] = "declined"
            await _complete(ops, item)
            if decision.kind == "cancel":
                raise TurnCancelled
            return "apply_patch failed: patch rejected by user"
        if decision.kind == "acceptForSession" and not outside:
            ops.thread.patches_approved_for_session = True
        approved = frozenset(outside_targets)  # accepted as shown: these paths, no others

    def may_write(path: str) -> bool:
        return path in approved or in_roots(path)

    try:
        await asyncio.to_thread(patches.apply_planned, changes, may_write=may_write)
    except (OSError, patches.PatchError) as exc:
        item["status"] = "failed"
        await _complete(ops, item)
        return f"apply_patch failed: {exc}"
    item["status"] = "completed"
    ops.turn.diff_changes.append(changes)
    await ops.emit(
        "turn/diff/updated", {**_ids(ops), "diff": patches.aggregate_diff(ops.turn.diff_changes)}
    )
    await _complete(ops, item)
    marks = {"add": "A", "delete": "D", "update": "M"}
    listing = "\n".join(f"{marks.get(c.kind, 'M')} {c.path}" for c in changes)
    return f"Success. Updated the following files:\n{listing}"


# -- update_plan ------------------------------------------------------------------------------

_STATUS = {"in_progress": "inProgress", "inProgress": "inProgress"}


async def _update_plan(ops: TurnOps, call: ToolCall) -> str:
    args = _arguments(call)
    raw = args.get("plan")
    if not isinstance(raw, list):
        return "update_plan failed: `plan` must be a list"
    plan = [
        {
            "step": str(p.get("step", "")),
            "status": _STATUS.get(str(p.get("status")), p.get("status")),
        }
        for p in raw
        if isinstance(p, dict)
    ]
    explanation = args.get("explanation")
    await ops.emit(
        "turn/plan/updated",
        {
            **_ids(ops),
            "explanation": explanation if isinstance(explanation, str) else None,
            "plan": cast("list[TurnPlanStep]", plan),
        },
    )
    return "Plan updated"
