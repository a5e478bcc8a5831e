"""Thread goals: an objective the agent keeps working toward, turn after turn, within a token
budget (``thread/goal/set|get|clear``, ``thread/goal/updated|cleared``).

Owns the goal record (the schema's ``ThreadGoal``: objective, status, token budget, tokens and
seconds used, timestamps), its rollout lines (``thread_goal_updated`` / ``thread_goal_cleared``
events, read back by ``stored`` so a goal survives a restart), the model's two goal tools
(``get_goal``; ``update_goal`` to mark it ``complete`` or ``blocked``), and ``GoalKeeper``, which
does what the reference does: an **active** goal on an idle thread starts a continuation turn at
once, and each turn that ends while the goal is active is counted against it and followed by
another, back to back, until the goal is complete, blocked, paused or out of budget
(``budgetLimited``). A turn the user interrupts pauses the goal; a failed one stops the
continuations (the goal stays active for the user to resume); a server that stops leaves it as
it was. It must never start a turn on a busy thread,
and never continue past ``MAX_CONTINUATIONS`` turns in a row (the goal is then paused).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import orjson

from appserver.engine.errors import EngineError
from appserver.engine.ports import Outbox
from appserver.engine.providers.events import ToolCall
from appserver.engine.thread_state import ActiveTurn, LoadedThread, now_s
from appserver.store.rollout import read_rollout

if TYPE_CHECKING:
    from appserver.engine.manager import ThreadManager
    from appserver.protocol.wire_types import ThreadGoal, ThreadGoalUpdatedNotification

Record = Callable[[str, dict[str, Any]], None]

log = logging.getLogger("appserver.engine")

STATUSES = ("active", "paused", "blocked", "usageLimited", "budgetLimited", "complete")
MAX_CONTINUATIONS = 100
GET_GOAL = "get_goal"
UPDATE_GOAL = "update_goal"

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "name": GET_GOAL,
        "description": (
            "Get the current goal of this thread: its objective, status, token budget, and the "
            "tokens and time used so far."
        ),
        "strict": False,
        "parameters": {"type": "object", "properties": {}, "additionalProperties": False},
    },
    {
        "type": "function",
        "name": UPDATE_GOAL,
        "description": (
            "Mark the thread's goal achieved (`complete`) or genuinely blocked (`blocked`). Use "
            "`complete` only when the objective is achieved and no required work remains; "
            "`blocked` only when the same obstacle has stopped you for several turns and you "
            "cannot progress without the user. Pausing and budgets are the user's."
        ),
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["complete", "blocked"]}},
            "required": ["status"],
            "additionalProperties": False,
        },
    },
]

CONTINUATION = (
    "<goal_context>\nThis thread has a goal set by the user. Keep working toward it:\n"
    "<objective>{objective}</objective>\n{budget}\nWhen the objective is fully achieved, call "
    "`update_goal` with status `complete`; if the same obstacle keeps you from progressing, "
    "call it with `blocked`. Do not stop only because the work is long.\n</goal_context>"
)


class GoalError(EngineError):
    """A goal request that cannot be honoured (the message is for the client: -32600)."""


def new_goal(thread_id: str, objective: str, budget: int | None) -> dict[str, Any]:
    now = now_s()
    return {
        "threadId": thread_id,
        "objective": objective,
        "status": "active",
        "tokenBudget": budget,
        "tokensUsed": 0,
        "timeUsedSeconds": 0,
        "createdAt": now,
        "updatedAt": now,
    }


def is_line(line: dict[str, Any]) -> bool:
    """Whether a rollout line is one of a goal's (a fork leaves them behind)."""
    payload = line.get("payload")
    kind = payload.get("type") if isinstance(payload, dict) else None
    return line.get("type") == "event_msg" and kind in (
        "thread_goal_updated",
        "thread_goal_cleared",
    )


def stored(lines: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The goal a rollout leaves the thread with (its last goal line), or None."""
    goal: dict[str, Any] | None = None
    for line in lines:
        payload = line.get("payload")
        if line.get("type") != "event_msg" or not isinstance(payload, dict):
            continue
        if payload.get("type") == "thread_goal_updated" and isinstance(payload.get("goal"), dict):
            goal = dict(payload["goal"])
        elif payload.get("type") == "thread_goal_cleared":
            goal = None
    return goal


def _budget_text(goal: dict[str, Any]) -> str:
    budget = goal.get("tokenBudget")
    used = goal.get("tokensUsed", 0)
    if budget is None:
        return f"Tokens used toward it so far: {used} (no budget)."
    return f"Tokens used toward it so far: {used} of a budget of {budget}."


def _exhausted(goal: dict[str, Any]) -> bool:
    budget = goal.get("tokenBudget")
    return budget is not None and int(goal.get("tokensUsed", 0)) >= int(budget)


class GoalKeeper:
    """Goals of the loaded threads, and the continuation turns an active goal drives."""

    def __init__(self, manager: ThreadManager) -> None:
        self.manager = manager
        self._baseline: dict[str, int] = {}  # thread → total tokens already counted
        self._streak: dict[str, int] = {}  # thread → continuation turns in a row
        manager.turn_finished_hooks.append(self._turn_finished)

    # -- the methods ------------------------------------------------------------------------
    def get(self, thread_id: str) -> dict[str, Any] | None:
        """The thread's goal: a loaded thread's, or the one a stored thread's rollout keeps
        (an unknown thread is an ``EngineError``)."""
        thread = self.manager.loaded.get(thread_id)
        if thread is not None:
            return thread.goal
        rec = self.manager.stored(thread_id)
        if rec is None:
            raise EngineError(f"thread not found: {thread_id}")
        return stored(read_rollout(rec.path).lines)

    async def set(
        self,
        thread: LoadedThread,
        *,
        objective: str | None,
        status: str | None,
        budget: int | None,
        budget_given: bool,
        turn_id: str | None = None,
    ) -> dict[str, Any]:
        """Create or change the thread's goal (fields not given are kept); tells every client."""
        if objective is not None and not objective.strip():
            raise GoalError("objective must not be empty")
        if budget_given and budget is not None and budget <= 0:
            raise GoalError("tokenBudget must be a positive number of tokens")
        goal = thread.goal
        was_active = goal is not None and goal["status"] == "active"
        if goal is None:
            if objective is None:
                raise GoalError("no goal exists")
            goal = new_goal(thread.id, objective.strip(), budget)
        else:
            goal = dict(goal)
            if objective is not None:
                goal["objective"] = objective.strip()
            if budget_given:
                goal["tokenBudget"] = budget
        if status is not None:
            goal["status"] = status
        if goal["status"] == "active" and _exhausted(goal):
            goal["status"] = "budgetLimited"
        if goal["status"] != "active":
            self._baseline.pop(thread.id, None)  # no longer counting turns against it
        elif not was_active:
            self._baseline[thread.id] = _total(thread)
            self._streak[thread.id] = 0
        goal["updatedAt"] = now_s()
        await self._store(thread, goal, turn_id)
        return goal

    async def clear(self, thread: LoadedThread) -> bool:
        """Forget the thread's goal (a running turn finishes; no other follows for it)."""
        if thread.goal is None:
            return False
        thread.goal = None
        self._baseline.pop(thread.id, None)
        self._streak.pop(thread.id, None)
        self.manager.recorder(thread)("event_msg", {"type": "thread_goal_cleared"})
        await self.manager.outbox.broadcast("thread/goal/cleared", {"threadId": thread.id})
        return True

    async def _store(self, thread: LoadedThread, goal: dict[str, Any], turn_id: str | None) -> None:
        await store(thread, goal, turn_id, self.manager.recorder(thread), self.manager.outbox)

    # -- continuation -----------------------------------------------------------------------
    async def continue_if_idle(self, thread: LoadedThread) -> None:
        """Start a continuation turn when the goal is active and the thread idle."""
        goal = thread.goal
        if goal is None or goal["status"] != "active" or thread.active_turn is not None:
            return
        if thread.id not in self.manager.loaded:
            return
        streak = self._streak.get(thread.id, 0)
        if streak >= MAX_CONTINUATIONS:
            log.warning("goal of thread %s paused after %d continuation turns", thread.id, streak)
            goal = {**goal, "status": "paused", "updatedAt": now_s()}
            await self._store(thread, goal, None)
            return
        self._streak[thread.id] = streak + 1
        note = CONTINUATION.replace("{objective}", goal["objective"]).replace(
            "{budget}", _budget_text(goal)
        )
        context = [
            {
                "type": "message",
                "role": "developer",
                "content": [{"type": "input_text", "text": note}],
            }
        ]
        turn = self.manager.begin_turn(thread)
        await self.manager.launch_body(thread, turn, lambda runner: runner.run_context(context))

    async def _turn_finished(self, thread: LoadedThread, turn: ActiveTurn, status: str) -> None:
        """Count the turn against the goal it worked for (also when the model marked the goal
        complete during it), then go on while the goal is active."""
        goal = thread.goal
        counting = thread.id in self._baseline
        if goal is None or (not counting and goal["status"] != "active"):
            return
        if status == "interrupted" and not turn.interrupt_requested:
            return  # the server is stopping: the goal stays as it was, to go on after a restart
        # A goal restored from disk starts counting now (what ran before is on record).
        total = _total(thread)
        used = max(0, total - self._baseline.get(thread.id, total))
        self._baseline[thread.id] = total
        goal = dict(goal)
        goal["tokensUsed"] = int(goal.get("tokensUsed", 0)) + used
        goal["timeUsedSeconds"] = int(goal.get("timeUsedSeconds", 0)) + max(
            0, now_s() - turn.started_at
        )
        if goal["status"] == "active" and status == "interrupted":
            goal["status"] = "paused"
        elif goal["status"] == "active" and _exhausted(goal):
            goal["status"] = "budgetLimited"
        if goal["status"] != "active":
            self._baseline.pop(thread.id, None)
        goal["updatedAt"] = now_s()
        await self._store(thread, goal, turn.id)
        if goal["status"] == "active" and status == "completed":
            await self.continue_if_idle(thread)
        else:
            self._streak.pop(thread.id, None)


async def store(
    thread: LoadedThread, goal: dict[str, Any], turn_id: str | None, record: Record, outbox: Outbox
) -> None:
    """The thread's goal is now ``goal``: kept, recorded, and told to every client."""
    thread.goal = goal
    record("event_msg", {"type": "thread_goal_updated", "goal": goal})
    params: ThreadGoalUpdatedNotification = {
        "threadId": thread.id,
        "turnId": turn_id,
        "goal": wire_goal(goal),
    }
    await outbox.broadcast("thread/goal/updated", params)


def wire_goal(goal: dict[str, Any]) -> ThreadGoal:
    """The goal record as the schema's ``ThreadGoal`` (a copy: the record keeps changing)."""
    return cast("ThreadGoal", dict(goal))


# -- the model's tools ---------------------------------------------------------------------


async def run_tool(
    thread: LoadedThread, turn_id: str, call: ToolCall, record: Record, outbox: Outbox
) -> str:
    """Run ``get_goal`` or ``update_goal``; the text goes back to the model."""
    goal = thread.goal
    if goal is None:
        return "no goal exists for this thread"
    if call.name == GET_GOAL:
        return orjson.dumps(goal).decode()
    try:
        args = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        args = {}
    status = args.get("status") if isinstance(args, dict) else None
    if status not in ("complete", "blocked"):
        return (
            "update_goal can only mark the goal `complete` or `blocked`; pausing, resuming "
            "and budgets are the user's"
        )
    goal = {**goal, "status": status, "updatedAt": now_s()}
    await store(thread, goal, turn_id, record, outbox)
    return orjson.dumps(goal).decode()


def _total(thread: LoadedThread) -> int:
    return int(thread.token_total.get("totalTokens", 0))


def model_specs(thread: LoadedThread) -> list[dict[str, Any]]:
    """The goal tools, offered while the thread has a goal."""
    return list(TOOLS) if thread.goal is not None else []


def is_goal_tool(thread: LoadedThread, name: str) -> bool:
    return thread.goal is not None and name in (GET_GOAL, UPDATE_GOAL)
