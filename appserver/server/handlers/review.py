"""``review/start``: params in, a review turn started, ``{turn, reviewThreadId}`` out.

Owns the delivery check (``inline``; ``detached`` is refused with -32600 as Codex 0.169.0
refuses it) and the ordering: the reply, whose turn already lists the review's
``userMessage``, goes out first and the turn starts after it (``Reply(after=...)``), so
``turn/started`` follows it. The engine's refusals (an unknown or busy thread, a target that
is not a git repository, an unknown branch or commit) leave as -32600 through ``mapped``. It
must never run git or the model itself (``engine.review`` and ``engine.review_target`` do).
"""

from __future__ import annotations

from typing import Any

from appserver.core.context import Reply
from appserver.core.processor import RequestContext
from appserver.engine import review
from appserver.engine.manager import ThreadManager
from appserver.protocol.agent_params import ReviewStartParams
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.server.engine_errors import mapped

DETACHED_REFUSED = (
    "detached review delivery is not supported: reviews run inline on the supplied thread; "
    "to review on a separate thread, start a thread first and use its id"
)


class ReviewHandlers:
    def __init__(self, manager: ThreadManager) -> None:
        self.manager = manager

    def register(self, r: MethodRegistry) -> None:
        r.register(
            "review/start",
            ReviewStartParams,
            mapped(self.review_start),
            result="ReviewStartResponse",
            scope=Scope.THREAD,
        )

    async def review_start(self, ctx: RequestContext, p: ReviewStartParams) -> Any:
        # ``Any``: a ``Reply`` around the ``ReviewStartResponse`` (the turn follows it).
        thread = self.manager.get_loaded(p.thread_id)
        if p.delivery == "detached":
            raise invalid_request(DETACHED_REFUSED)
        if p.delivery not in (None, "inline"):
            raise invalid_request(
                f"Invalid request: unknown variant `{p.delivery[:100]}`, expected `inline`"
            )
        begun = await review.begin(self.manager, thread, p.target)
        return Reply(begun.reply(), after=lambda: review.launch(self.manager, begun))
