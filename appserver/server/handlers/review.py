"""``review/start``: params in, a review turn started, ``{turn, reviewThreadId}`` out.

Owns the checks the reference makes before a review turn exists (a loaded, idle thread;
``inline`` delivery, ``detached`` being refused with -32600 as Codex 0.169.0 refuses it; a
target that can be reviewed: a git repository, a known branch or commit) and the reply, whose
turn already lists the review's ``userMessage``. The turn starts after the reply goes out, so
``turn/started`` follows it. It must never run git or the model itself (``review_target`` and
``review`` do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appserver.core.processor import RequestContext
from appserver.core.reply import Reply
from appserver.engine import review, review_target
from appserver.engine.manager import ThreadManager
from appserver.protocol.agent_params import ReviewStartParams
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope

DETACHED_REFUSED = (
    "detached review delivery is not supported: reviews run inline on the supplied thread; "
    "to review on a separate thread, start a thread first and use its id"
)


class ReviewHandlers:
    def __init__(self, manager: ThreadManager) -> None:
        self.manager = manager

    def register(self, r: MethodRegistry) -> None:
        r.register("review/start", ReviewStartParams, self.review_start, scope=Scope.THREAD)

    async def review_start(self, ctx: RequestContext, p: ReviewStartParams) -> Reply:
        thread = self.manager.get_loaded(p.thread_id)
        if p.delivery == "detached":
            raise invalid_request(DETACHED_REFUSED)
        if p.delivery not in (None, "inline"):
            raise invalid_request(
                f"Invalid request: unknown variant `{p.delivery[:100]}`, expected `inline`"
            )
        if thread.active_turn is not None:
            raise invalid_request(f"thread {thread.id} already has an active turn")
        try:
            request = await review_target.resolve(p.target, Path(thread.settings.cwd))
        except review_target.TargetError as exc:
            raise invalid_request(str(exc)) from None
        turn = self.manager.begin_turn(thread, "review")
        user = review.user_item(request.hint)
        result: dict[str, Any] = {
            "turn": {**turn.wire(), "items": [user]},
            "reviewThreadId": thread.id,
        }

        async def launch() -> None:
            await self.manager.launch_body(
                thread, turn, lambda runner: review.run(runner, request, user)
            )

        return Reply(result, after=launch)
