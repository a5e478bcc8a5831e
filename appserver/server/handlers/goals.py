"""``thread/goal/set``, ``thread/goal/get`` and ``thread/goal/clear``: params in, ``GoalKeeper``
calls, results out; and the goal notice a resuming client gets.

Owns the replies (``{goal}``, ``{goal: null}``, ``{cleared}``) and the ordering the protocol
needs: a set that makes the goal active on an idle thread replies first, then the continuation
turn starts (``Reply(after=...)``). The engine's refusals (an unknown thread, ``no goal
exists``) leave as -32600 through ``mapped``. It must never run a turn itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from appserver.core.context import Reply
from appserver.core.processor import RequestContext
from appserver.engine import goals
from appserver.engine.manager import ThreadManager
from appserver.engine.thread_state import LoadedThread
from appserver.protocol.agent_params import ThreadGoalIdParams, ThreadGoalSetParams
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.server.engine_errors import mapped

if TYPE_CHECKING:
    from appserver.protocol.wire_types import (
        ThreadGoalClearResponse,
        ThreadGoalGetResponse,
        ThreadGoalSetResponse,
    )


def goal_notice(thread: LoadedThread) -> tuple[str, dict[str, Any]]:
    """What a client that resumes ``thread`` is told of its goal, as the reference tells it:
    ``thread/goal/updated`` with the goal, or ``thread/goal/cleared`` when it has none."""
    if thread.goal is None:
        return "thread/goal/cleared", {"threadId": thread.id}
    goal = goals.wire_goal(thread.goal)
    return "thread/goal/updated", {"threadId": thread.id, "turnId": None, "goal": goal}


class GoalHandlers:
    def __init__(self, manager: ThreadManager) -> None:
        self.manager = manager
        self.keeper = goals.GoalKeeper(manager)

    def register(self, r: MethodRegistry) -> None:
        t = Scope.THREAD
        r.register(
            "thread/goal/set",
            ThreadGoalSetParams,
            mapped(self.goal_set),
            result="ThreadGoalSetResponse",
            scope=t,
        )
        r.register(
            "thread/goal/get",
            ThreadGoalIdParams,
            mapped(self.goal_get),
            result="ThreadGoalGetResponse",
            scope=t,
        )
        r.register(
            "thread/goal/clear",
            ThreadGoalIdParams,
            mapped(self.goal_clear),
            result="ThreadGoalClearResponse",
            scope=t,
        )

    async def goal_set(self, ctx: RequestContext, p: ThreadGoalSetParams) -> Any:
        # ``Any``: a ``Reply`` around the ``ThreadGoalSetResponse`` (the turn follows it).
        thread = self.manager.get_loaded(p.thread_id)
        goal = await self.keeper.set(
            thread,
            objective=p.objective,
            status=p.status,
            budget=p.token_budget,
            budget_given="token_budget" in p.model_fields_set,
        )
        result: ThreadGoalSetResponse = {"goal": goals.wire_goal(goal)}
        return Reply(result, after=lambda: self.keeper.continue_if_idle(thread))

    async def goal_get(self, ctx: RequestContext, p: ThreadGoalIdParams) -> ThreadGoalGetResponse:
        goal = self.keeper.get(p.thread_id)
        return {"goal": goals.wire_goal(goal) if goal is not None else None}

    async def goal_clear(
        self, ctx: RequestContext, p: ThreadGoalIdParams
    ) -> ThreadGoalClearResponse:
        thread = self.manager.get_loaded(p.thread_id)
        return {"cleared": await self.keeper.clear(thread)}
