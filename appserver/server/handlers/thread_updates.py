"""``thread/inject_items`` and ``thread/settings/update``: params in, ``thread_updates`` calls,
results out.

Owns these handlers and their registration, and the ``thread/settings/updated`` a settings
update sends the thread's subscribers. What the client got wrong (the engine's
``EngineError``) leaves as -32600 through ``mapped``. It must never touch a thread's history
or rollout itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from appserver.core.processor import RequestContext
from appserver.engine import thread_updates
from appserver.engine.manager import ThreadManager
from appserver.protocol.agent_params import ThreadInjectItemsParams, ThreadSettingsUpdateParams
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.server.engine_errors import mapped

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import ThreadSettingsUpdateResponse
    from appserver.protocol.wire_types import (
        ThreadInjectItemsResponse,
        ThreadSettingsUpdatedNotification,
    )


class ThreadUpdateHandlers:
    def __init__(self, manager: ThreadManager) -> None:
        self.manager = manager

    def register(self, r: MethodRegistry) -> None:
        t = Scope.THREAD
        r.register(
            "thread/inject_items",
            ThreadInjectItemsParams,
            mapped(self.inject_items),
            result="ThreadInjectItemsResponse",
            scope=t,
        )
        r.register(
            "thread/settings/update",
            ThreadSettingsUpdateParams,
            mapped(self.settings_update),
            result="ThreadSettingsUpdateResponse",
            experimental=True,
            scope=t,
        )

    async def inject_items(
        self, ctx: RequestContext, p: ThreadInjectItemsParams
    ) -> ThreadInjectItemsResponse:
        thread = self.manager.get_loaded(p.thread_id)
        items = thread_updates.check_items(p.items)
        thread_updates.inject(thread, items, self.manager.recorder(thread))
        return {}

    async def settings_update(
        self, ctx: RequestContext, p: ThreadSettingsUpdateParams
    ) -> ThreadSettingsUpdateResponse:
        thread = self.manager.get_loaded(p.thread_id)
        view = thread_updates.update(thread, p, self.manager.recorder(thread))
        updated: ThreadSettingsUpdatedNotification = {"threadId": thread.id, "threadSettings": view}
        # (The core sends any params: a TypedDict is a dict at run time.)
        await ctx.notify_thread(
            thread.id, "thread/settings/updated", cast("dict[str, Any]", updated)
        )
        return {}
