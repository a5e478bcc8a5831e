"""Thread and turn methods (spec §3.1, §3.2): params in, ``ThreadManager`` calls, replies out.

Owns the mapping from protocol to engine: which engine call answers each method, the
experimental fields a connection may set, and the ordering the protocol promises (a
``thread/start``, ``turn/start`` or ``thread/compact/start`` response before the
notifications it causes, a ``turn/interrupt`` response before ``turn/completed``). Settings
resolution is the engine's (``engine.settings``), the reply shapes are ``server.views``'s,
and the engine's refusals become -32600 through ``server.engine_errors``. It must never run a
turn itself, nor reach into the engine's state (its store, outbox or turn internals).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from appserver.core.processor import Reply, RequestContext
from appserver.engine import collaboration, settings
from appserver.engine.manager import ThreadManager
from appserver.engine.thread_state import LoadedThread, ThreadSettings
from appserver.engine.views import thread_view
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.protocol.thread_params import (
    ThreadCompactStartParams,
    ThreadForkParams,
    ThreadIdParams,
    ThreadListParams,
    ThreadLoadedListParams,
    ThreadMetadataUpdateParams,
    ThreadNameSetParams,
    ThreadOverrides,
    ThreadReadParams,
    ThreadResumeParams,
    ThreadSearchParams,
    ThreadStartParams,
    ThreadTurnsListParams,
    TurnInterruptParams,
    TurnStartParams,
    TurnSteerParams,
    check_user_input,
)
from appserver.server import views
from appserver.server.catalog import Catalog
from appserver.server.config import LoadedConfig
from appserver.server.engine_errors import mapped
from appserver.server.handlers.history_paging import newest_item_cursor
from appserver.store.paging import SortKey
from appserver.store.record import ThreadRecord

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import (
        ThreadListResult,
        ThreadReadResult,
        ThreadSearchHit,
        ThreadSearchResponse,
    )
    from appserver.protocol.wire_types import (
        Thread,
        ThreadArchiveResponse,
        ThreadDeleteResponse,
        ThreadLoadedListResponse,
        ThreadMetadataUpdateResponse,
        ThreadReadState,
        ThreadSetNameResponse,
        ThreadTurnsListResponse,
        ThreadUnarchiveResponse,
        ThreadUnsubscribeResponse,
        ThreadUnsubscribeStatus,
        TurnItemsView,
        TurnSteerResponse,
    )

T = TypeVar("T")


def _require_experimental(ctx: RequestContext, descriptor: str, value: Any) -> None:
    """An experimental field set without ``experimentalApi`` is refused, as Codex words it."""
    if value is not None and not ctx.connection.experimental_api:
        raise invalid_request(f"{descriptor} requires experimentalApi capability")


def _check_thread_id(thread_id: str) -> None:
    try:
        uuid.UUID(thread_id)
    except ValueError as exc:
        raise invalid_request(f"invalid thread id: {exc}") from None


EXCLUDED_IDS_MAX = 100  # thread/list's excludedThreadIds, as the schema bounds it


class _Defaults:
    """The server's config and model catalog, as ``engine.settings`` asks for them."""

    def __init__(self, config: LoadedConfig, catalog: Catalog) -> None:
        self._config = config
        self._catalog = catalog

    @property
    def default_provider(self) -> str:
        return self._catalog.default_provider

    @property
    def default_model(self) -> str:
        return self._catalog.default_model

    def has(self, provider: str) -> bool:
        return self._catalog.has(provider)

    def config(self, key: str, default: Any = None) -> Any:
        return self._config.get(key, default)


class ThreadHandlers:
    def __init__(self, config: LoadedConfig, catalog: Catalog, manager: ThreadManager) -> None:
        self.defaults = _Defaults(config, catalog)
        self.manager = manager

    def register(self, r: MethodRegistry) -> None:
        t, c, i = Scope.THREAD, Scope.CONCURRENT, Scope.INLINE
        r.register(
            "thread/start",
            ThreadStartParams,
            mapped(self.thread_start),
            result="ThreadStartResult",
            scope=c,
        )
        r.register(
            "thread/resume",
            ThreadResumeParams,
            mapped(self.thread_resume),
            result="ThreadResumeResult",
            scope=t,
        )
        r.register(
            "thread/fork",
            ThreadForkParams,
            mapped(self.thread_fork),
            result="ThreadForkResult",
            scope=t,
        )
        r.register(
            "thread/read",
            ThreadReadParams,
            mapped(self.thread_read),
            result="ThreadReadResult",
            scope=c,
        )
        r.register(
            "thread/list",
            ThreadListParams,
            mapped(self.thread_list),
            result="ThreadListResult",
            scope=i,
        )
        r.register(
            "thread/search",
            ThreadSearchParams,
            mapped(self.thread_search),
            result="ThreadSearchResponse",
            scope=i,
            experimental=True,
        )
        r.register(
            "thread/turns/list",
            ThreadTurnsListParams,
            mapped(self.turns_list),
            result="ThreadTurnsListResponse",
            scope=c,
        )
        r.register(
            "thread/loaded/list",
            ThreadLoadedListParams,
            mapped(self.loaded_list),
            result="ThreadLoadedListResponse",
            scope=i,
        )
        r.register(
            "thread/archive",
            ThreadIdParams,
            mapped(self.thread_archive),
            result="ThreadArchiveResponse",
            scope=t,
        )
        r.register(
            "thread/unarchive",
            ThreadIdParams,
            mapped(self.thread_unarchive),
            result="ThreadUnarchiveResponse",
            scope=t,
        )
        r.register(
            "thread/delete",
            ThreadIdParams,
            mapped(self.thread_delete),
            result="ThreadDeleteResponse",
            scope=t,
        )
        r.register(
            "thread/name/set",
            ThreadNameSetParams,
            mapped(self.name_set),
            result="ThreadSetNameResponse",
            scope=t,
        )
        r.register(
            "thread/unsubscribe",
            ThreadIdParams,
            mapped(self.unsubscribe),
            result="ThreadUnsubscribeResponse",
            scope=t,
        )
        r.register(
            "thread/metadata/update",
            ThreadMetadataUpdateParams,
            mapped(self.metadata_update),
            result="ThreadMetadataUpdateResponse",
            scope=t,
        )
        r.register(
            "thread/compact/start",
            ThreadCompactStartParams,
            mapped(self.compact_start),
            result="ThreadCompactStartResponse",
            scope=t,
        )
        r.register(
            "turn/start",
            TurnStartParams,
            mapped(self.turn_start),
            result="TurnStartResponse",
            scope=t,
        )
        r.register(
            "turn/steer",
            TurnSteerParams,
            mapped(self.turn_steer),
            result="TurnSteerResponse",
            scope=t,
        )
        r.register(
            "turn/interrupt",
            TurnInterruptParams,
            mapped(self.turn_interrupt),
            result="TurnInterruptResponse",
            scope=t,
        )

    def _settings(self, p: ThreadOverrides, base: ThreadSettings | None = None) -> ThreadSettings:
        return settings.resolve_thread(p, self.defaults, base)

    def _respond_then_started(
        self, ctx: RequestContext, thread: LoadedThread, response: Any
    ) -> Reply:
        async def started() -> None:
            await ctx.notify_thread(thread.id, "thread/started", {"thread": thread_view(thread)})

        return Reply(response, after=started)

    # -- threads ----------------------------------------------------------------------------
    async def thread_start(self, ctx: RequestContext, p: ThreadStartParams) -> Any:
        _require_experimental(ctx, "thread/start.permissions", p.permissions)
        thread = self.manager.start(
            self._settings(p),
            ephemeral=bool(p.ephemeral),
            conn_id=ctx.connection.id,
            originator=ctx.connection.client_name or "appserver",
        )
        reply = views.thread_settings_reply(thread, [])
        return self._respond_then_started(ctx, thread, reply)

    async def thread_resume(self, ctx: RequestContext, p: ThreadResumeParams) -> Any:
        _check_thread_id(p.thread_id)
        _require_experimental(ctx, "thread/resume.permissions", p.permissions)
        thread = self.manager.loaded.get(p.thread_id)
        conn_id = ctx.connection.id
        if thread is not None:
            turns = self.manager.turns_of(thread)
        else:
            thread, turns = self.manager.load_stored(
                p.thread_id, ctx.connection.client_name or "appserver"
            )
            thread.settings = self._settings(p, thread.settings)
        # A turn a restart cut short while it waited on an approval goes on (asking again).
        waiting = self.manager.begin_waiting_turn(thread)
        if waiting is not None:
            turns = self.manager.turns_of(thread)
        self.manager.attach(thread, conn_id)
        items_cursor = newest_item_cursor(self.manager.items_by_id(thread.id) or [])
        shown = [] if p.exclude_turns else turns
        response = views.thread_resume_reply(thread, turns, shown, items_cursor)

        async def after() -> None:
            # As Codex: the resuming client learns the thread's token usage at once.
            usage = self.manager.usage_update(thread)
            if usage is not None:
                # (The core sends any params: a TypedDict is a dict at run time.)
                await ctx.notify("thread/tokenUsage/updated", cast("dict[str, Any]", usage))
            if waiting is not None:
                await self.manager.launch_waiting_turn(thread, waiting)
            # A client that comes back finds the approvals still waiting for an answer.
            await self.manager.replay_pending(thread.id, conn_id)

        return Reply(response, after=after)

    async def thread_fork(self, ctx: RequestContext, p: ThreadForkParams) -> Any:
        _check_thread_id(p.thread_id)
        _require_experimental(ctx, "thread/fork.permissions", p.permissions)
        thread, turns = self.manager.fork(
            p.thread_id,
            lambda base: self._settings(p, base),
            ephemeral=bool(p.ephemeral),
            conn_id=ctx.connection.id,
            originator=ctx.connection.client_name or "appserver",
        )
        reply = views.thread_settings_reply(thread, turns)
        return self._respond_then_started(ctx, thread, reply)

    async def thread_read(self, ctx: RequestContext, p: ThreadReadParams) -> ThreadReadResult:
        _check_thread_id(p.thread_id)
        thread = self.manager.loaded.get(p.thread_id)
        if thread is not None:
            if p.include_turns and thread.ephemeral:
                raise invalid_request("ephemeral threads do not support includeTurns")
            if p.include_turns and not thread.materialized:
                raise invalid_request(
                    f"thread {thread.id} is not materialized yet; includeTurns is unavailable "
                    "before first user message"
                )
            turns = self.manager.turns_of(thread) if p.include_turns else []
            return {"thread": thread_view(thread, turns), "readState": self._read_state(thread.id)}
        rec = self.manager.stored(p.thread_id)
        if rec is None:
            raise invalid_request(f"thread not loaded: {p.thread_id}")
        return {
            "thread": self.manager.record_view(rec, include_turns=p.include_turns),
            "readState": self._read_state(rec.id),
        }

    def _read_state(self, thread_id: str) -> ThreadReadState | None:
        return self.manager.read_state(thread_id)

    def _list_page(
        self, view: Callable[[ThreadRecord], T], **query: Any
    ) -> tuple[list[T], str | None, str | None]:
        """One page of ``thread/list`` or ``thread/search``: the threads as ``view`` shows
        them, ``nextCursor`` and ``backwardsCursor`` (see ``ThreadManager.list_stored``)."""
        records, next_cursor, backwards = self.manager.list_stored(**query)
        return [view(rec) for rec in records], next_cursor, backwards

    async def thread_list(self, ctx: RequestContext, p: ThreadListParams) -> ThreadListResult:
        excluded = p.excluded_thread_ids or []
        if len(excluded) > EXCLUDED_IDS_MAX:
            raise invalid_request(
                f"Invalid request: excludedThreadIds holds {len(excluded)} ids; at most "
                f"{EXCLUDED_IDS_MAX} are allowed"
            )
        for thread_id in excluded:
            _check_thread_id(thread_id)
        if p.originators:
            raise invalid_request(
                "Invalid request: originators filtering is not supported by a local server"
            )
        # No thread is in a section, none is a sub-agent's or attached to another: those
        # filters, when set to a value, match nothing.
        related = p.parent_thread_id or p.ancestor_thread_id or p.attached_to_thread_id
        if p.section_id is not None or related:
            return {"data": [], "readStates": {}, "nextCursor": None, "backwardsCursor": None}
        sort_key: SortKey = "created_at" if p.sort_key in (None, "created_at") else "updated_at"
        data, next_cursor, backwards = self._list_page(
            self.manager.record_view,
            cursor=p.cursor,
            limit=p.limit,
            sort_key=sort_key,
            sort_direction=p.sort_direction or "desc",
            archived=p.archived,
            model_providers=p.model_providers or None,
            cwd=p.cwd,
            search_term=p.search_term,
            excluded_ids=excluded or None,
        )
        states = {t["id"]: self._read_state(t["id"]) for t in data}
        return {
            "data": data,
            "nextCursor": next_cursor,
            "backwardsCursor": backwards,
            "readStates": {k: v for k, v in states.items() if v is not None},
        }

    async def thread_search(
        self, ctx: RequestContext, p: ThreadSearchParams
    ) -> ThreadSearchResponse:
        def result(rec: ThreadRecord) -> ThreadSearchHit:
            snippet = views.search_snippet(p.search_term, rec.name, rec.preview)
            return {"thread": self.manager.record_view(rec), "snippet": snippet}

        data, next_cursor, backwards = self._list_page(
            result,
            cursor=p.cursor,
            limit=p.limit,
            sort_key="created_at" if p.sort_key == "created_at" else "updated_at",
            sort_direction=p.sort_direction or "desc",
            archived=p.archived,
            search_term=p.search_term,
        )
        return {"data": data, "nextCursor": next_cursor, "backwardsCursor": backwards}

    async def turns_list(
        self, ctx: RequestContext, p: ThreadTurnsListParams
    ) -> ThreadTurnsListResponse:
        """A page of a thread's turns, newest first unless ``sortDirection`` is ``asc``."""
        _check_thread_id(p.thread_id)
        self.manager.check_pageable(p.thread_id, "thread/turns/list")
        turns = self.manager.turns_by_id(p.thread_id)
        if turns is None:
            raise invalid_request(f"thread not loaded: {p.thread_id}")
        view: TurnItemsView = p.items_view or "summary"
        return views.turns_page(
            turns,
            cursor=p.cursor,
            limit=p.limit,
            descending=p.sort_direction != "asc",
            view=view,
        )

    async def loaded_list(
        self, ctx: RequestContext, p: ThreadLoadedListParams
    ) -> ThreadLoadedListResponse:
        ids = sorted(self.manager.loaded)
        start = 0
        if p.cursor:
            if p.cursor not in self.manager.loaded:
                raise invalid_request(f"invalid cursor: {p.cursor}")
            start = ids.index(p.cursor) + 1
        limit = min(p.limit or 100, 100)
        page = ids[start : start + limit]
        more = start + limit < len(ids)
        return {"data": page, "nextCursor": page[-1] if more and page else None}

    async def thread_archive(self, ctx: RequestContext, p: ThreadIdParams) -> ThreadArchiveResponse:
        _check_thread_id(p.thread_id)
        await self.manager.archive(p.thread_id)
        return {}

    async def thread_delete(self, ctx: RequestContext, p: ThreadIdParams) -> ThreadDeleteResponse:
        _check_thread_id(p.thread_id)
        await self.manager.delete(p.thread_id)
        return {}

    async def thread_unarchive(
        self, ctx: RequestContext, p: ThreadIdParams
    ) -> ThreadUnarchiveResponse:
        _check_thread_id(p.thread_id)
        rec = await self.manager.unarchive(p.thread_id)
        return {"thread": self.manager.record_view(rec, include_turns=True)}

    async def name_set(self, ctx: RequestContext, p: ThreadNameSetParams) -> ThreadSetNameResponse:
        self.manager.set_name(p.thread_id, p.name)
        await ctx.broadcast("thread/name/updated", {"threadId": p.thread_id, "threadName": p.name})
        return {}

    async def unsubscribe(
        self, ctx: RequestContext, p: ThreadIdParams
    ) -> ThreadUnsubscribeResponse:
        status = self.manager.detach(p.thread_id, ctx.connection.id)
        return {"status": cast("ThreadUnsubscribeStatus", status)}

    async def metadata_update(
        self, ctx: RequestContext, p: ThreadMetadataUpdateParams
    ) -> ThreadMetadataUpdateResponse:
        self.manager.update_git_info(p.thread_id, p.git_info)
        return {"thread": self._thread_view(p.thread_id)}

    def _thread_view(self, thread_id: str) -> Thread:
        """A thread known to exist, loaded or stored."""
        thread = self.manager.loaded.get(thread_id)
        if thread is not None:
            return thread_view(thread)
        rec = self.manager.stored(thread_id)
        assert rec is not None
        return self.manager.record_view(rec)

    # -- turns ------------------------------------------------------------------------------
    async def turn_start(self, ctx: RequestContext, p: TurnStartParams) -> Any:
        _require_experimental(ctx, "turn/start.permissions", p.permissions)
        _require_experimental(ctx, "turn/start.collaborationMode", p.collaboration_mode)
        thread = self.manager.get_loaded(p.thread_id)
        user_input = check_user_input(p.input)
        self.manager.check_can_begin(thread)
        thread.settings = settings.resolve_turn(p, thread.settings)
        # A turn in another collaboration mode than the history's tells the model first.
        mode = p.collaboration_mode
        switch = (
            collaboration.mode_switch(
                thread.history,
                mode.mode,
                mode.settings.developer_instructions if mode.settings else None,
            )
            if mode is not None
            else None
        )
        turn = self.manager.begin_turn(thread)
        turn.output_schema = p.output_schema
        return Reply(
            views.turn_reply(turn),
            after=lambda: self.manager.launch_turn(
                thread, turn, user_input, [switch] if switch else None
            ),
        )

    async def compact_start(self, ctx: RequestContext, p: ThreadCompactStartParams) -> Any:
        """Reply ``{}``, then run a compaction turn: its progress is the turn's notifications."""
        thread = self.manager.get_loaded(p.thread_id)
        turn = self.manager.begin_turn(thread, "compact")
        return Reply({}, after=lambda: self.manager.launch_compaction(thread, turn))

    async def turn_steer(self, ctx: RequestContext, p: TurnSteerParams) -> TurnSteerResponse:
        thread = self.manager.get_loaded(p.thread_id)
        if not p.input:
            raise invalid_request("input must not be empty")
        if not p.expected_turn_id:
            raise invalid_request("expectedTurnId must not be empty")
        turn = self.manager.steerable_turn(thread, p.expected_turn_id)
        self.manager.steer(turn, check_user_input(p.input))
        return {"turnId": turn.id}

    async def turn_interrupt(self, ctx: RequestContext, p: TurnInterruptParams) -> Any:
        thread = self.manager.get_loaded(p.thread_id)
        turn = self.manager.active_turn(thread, p.turn_id)
        await self.manager.interrupt(thread)
        return Reply({}, after=lambda: self.manager.let_complete(turn))
