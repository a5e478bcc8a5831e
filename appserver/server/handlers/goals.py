"""``thread/goal/set``, ``thread/goal/get`` and ``thread/goal/clear``: params in, ``GoalKeeper``
calls, results out; and the goal notice a resuming client gets.

Owns the replies (``{goal}``, ``{goal: null}``, ``{cleared}``), the client's errors (-32600:
an unknown thread, ``no goal exists``), and the ordering the protocol needs: a set that makes
the goal active on an idle thread replies first, then the continuation turn starts. A stored
thread that is not loaded is read from its rollout for ``get``. It must never run a turn
itself.
"""

from __future__ import annotations

from typing import Any

from appserver.core.processor import RequestContext
from appserver.core.reply import Reply
from appserver.engine import goals
from appserver.engine.manager import ThreadManager
from appserver.engine.thread_state import LoadedThread
from appserver.protocol.agent_params import ThreadGoalIdParams, ThreadGoalSetParams
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.store.rollout import read_rollout


def goal_notice(thread: LoadedThread) -> tuple[str, dict[str, Any]]:
    """What a client that resumes ``thread`` is told of its goal, as the reference tells it:
    ``thread/goal/updated`` with the goal, or ``thread/goal/cleared`` when it has none."""
    if thread.goal is None:
        return "thread/goal/cleared", {"threadId": thread.id}
    return "thread/goal/updated", {"threadId": thread.id, "turnId": None, "goal": thread.goal}


class GoalHandlers:
    def __init__(self, manager: ThreadManager) -> None:
        self.manager = manager
        self.keeper = goals.GoalKeeper(manager)

    def register(self, r: MethodRegistry) -> None:
        t = Scope.THREAD
        r.register("thread/goal/set", ThreadGoalSetParams, self.goal_set, scope=t)
        r.register("thread/goal/get", ThreadGoalIdParams, self.goal_get, scope=t)
        r.register("thread/goal/clear", ThreadGoalIdParams, self.goal_clear, scope=t)

    async def goal_set(self, ctx: RequestContext, p: ThreadGoalSetParams) -> Reply:
        thread = self.manager.get_loaded(p.thread_id)
        try:
            goal = await self.keeper.set(
                thread,
                objective=p.objective,
                status=p.status,
                budget=p.token_budget,
                budget_given="token_budget" in p.model_fields_set,
            )
        except goals.GoalError as exc:
            raise invalid_request(str(exc)) from None

        async def go_on() -> None:
            await self.keeper.continue_if_idle(thread)

        return Reply({"goal": goal}, after=go_on)

    async def goal_get(self, ctx: RequestContext, p: ThreadGoalIdParams) -> dict[str, Any]:
        thread = self.manager.loaded.get(p.thread_id)
        if thread is not None:
            return {"goal": thread.goal}
        rec = self.manager.store.get(p.thread_id)
        if rec is None:
            raise invalid_request(f"thread not found: {p.thread_id}")
        return {"goal": goals.stored(read_rollout(rec.path).lines)}

    async def goal_clear(self, ctx: RequestContext, p: ThreadGoalIdParams) -> dict[str, Any]:
        thread = self.manager.get_loaded(p.thread_id)
        return {"cleared": await self.keeper.clear(thread)}
