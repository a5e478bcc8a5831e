"""Thread and turn methods (spec §3.1, §3.2): params in, ``ThreadManager`` calls, replies out.

Owns the mapping from protocol to engine: effective settings for a new thread (config
defaults, then the request's overrides), the response shapes, and the ordering the protocol
promises (a ``thread/start``, ``turn/start`` or ``thread/compact/start`` response before the
notifications it causes, a ``turn/interrupt`` response before ``turn/completed``), and the
refusal to steer a compaction turn. It must never run a turn itself.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_args

from appserver.core.processor import NO_REPLY, RequestContext
from appserver.engine import collaboration, permission_profiles
from appserver.engine.manager import ThreadManager
from appserver.engine.thread_config import merge_overrides, tool_switches
from appserver.engine.thread_state import LoadedThread, ThreadSettings
from appserver.engine.tools import sandbox
from appserver.protocol.errors import RpcError, invalid_request
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.protocol.thread_params import (
    ApprovalPolicy,
    Effort,
    SandboxMode,
    Summary,
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
from appserver.server.catalog import Catalog
from appserver.server.config import LoadedConfig
from appserver.server.handlers.history_paging import check_history_pageable, newest_item_cursor
from appserver.server.handlers.sections import section_fields
from appserver.store.index import ANY_SECTION, SortKey, ThreadRecord, encode_cursor
from appserver.store.sections import decode_offset, encode_offset

# ``config`` overrides this module reads, and the values each may take (None: any string).
_CONFIG_OVERRIDES: dict[str, tuple[str, ...] | None] = {
    "model": None,
    "model_provider": None,
    "approval_policy": get_args(ApprovalPolicy),
    "sandbox_mode": get_args(SandboxMode),
    "model_reasoning_effort": get_args(Effort),
    "model_reasoning_summary": get_args(Summary),
}


def _check_config_overrides(extra: dict[str, Any]) -> None:
    """A ``config`` override of the wrong type or value is the client's error (-32600)."""
    for key, allowed in _CONFIG_OVERRIDES.items():
        value = extra.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise invalid_request(f"Invalid request: config.{key}: expected a string")
        if allowed is not None and value not in allowed:
            raise invalid_request(
                f"Invalid request: config.{key}: unknown variant `{value[:100]}`, expected one "
                "of " + ", ".join(f"`{a}`" for a in allowed)
            )


def _profile_policy(permissions: str | dict[str, Any], cwd: Path) -> dict[str, Any]:
    """The sandbox policy of a ``permissions`` selection (a profile id, or the legacy
    ``{type: "profile", id, modifications}`` object); a bad one is the client's error."""
    modifications: Any = None
    if isinstance(permissions, str):
        profile_id = permissions
    else:
        given, modifications = permissions.get("id"), permissions.get("modifications")
        if permissions.get("type") != "profile" or not isinstance(given, str):
            raise invalid_request(
                "Invalid request: permissions: expected a profile id or {type: profile, id}"
            )
        profile_id = given
        if modifications is not None and not isinstance(modifications, list):
            raise invalid_request("Invalid request: permissions.modifications: expected a list")
    try:
        return permission_profiles.policy_for(profile_id, modifications, cwd)
    except ValueError as exc:
        raise invalid_request(f"Invalid request: permissions: {exc}") from None


def _require_experimental(ctx: RequestContext, descriptor: str, value: Any) -> None:
    """An experimental field set without ``experimentalApi`` is refused, as Codex words it."""
    if value is not None and not ctx.connection.experimental_api:
        raise invalid_request(f"{descriptor} requires experimentalApi capability")


def _wire_approval_policy(policy: str) -> str:
    """The policy as a response may carry it. The deprecated ``on-failure`` (still accepted
    from config and params) is not in the schema's ``AskForApproval``, so clients parsing the
    response (the official SDK) would reject it: it is reported as ``on-request``, the schema
    value nearest to it."""
    return "on-request" if policy == "on-failure" else policy


def _check_thread_id(thread_id: str) -> None:
    try:
        uuid.UUID(thread_id)
    except ValueError as exc:
        raise invalid_request(f"invalid thread id: {exc}") from None


def _not_steerable(message: str) -> RpcError:
    """A refusal to add input to a compaction turn (-32600). The error's ``data`` is a
    ``TurnError`` whose ``codexErrorInfo`` is the schema's ``activeTurnNotSteerable``: that
    tag, not the message, is what clients test for."""
    error = {
        "message": message,
        "codexErrorInfo": {"activeTurnNotSteerable": {"turnKind": "compact"}},
        "additionalDetails": None,
    }
    return invalid_request(message, error)


EXCLUDED_IDS_MAX = 100  # thread/list's excludedThreadIds, as the schema bounds it
TURNS_PAGE_DEFAULT = 25
TURNS_PAGE_MAX = 100


def _turn_cursor(turn_id: str, *, inclusive: bool) -> str:
    """Opaque: the turn a page starts from, and whether that turn is included again."""
    raw = f"{'at' if inclusive else 'after'}:{turn_id}".encode()
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_turn_cursor(cursor: str) -> tuple[str, bool]:
    try:
        kind, turn_id = base64.urlsafe_b64decode(cursor.encode("ascii")).decode().split(":", 1)
    except (ValueError, UnicodeError, binascii.Error):
        raise invalid_request(f"invalid cursor: {cursor}") from None
    if kind not in ("at", "after") or not turn_id:
        raise invalid_request(f"invalid cursor: {cursor}")
    return turn_id, kind == "at"


def _turn_view(turn: dict[str, Any], view: str) -> dict[str, Any]:
    """A stored turn (full items) as ``itemsView`` asks: all items, the final agent message
    only (as ``turn/completed`` carries it), or none."""
    if view == "full":
        return turn
    items: list[Any] = []
    if view == "summary":
        messages = [i for i in turn["items"] if i.get("type") == "agentMessage"]
        items = messages[-1:]
    return {**turn, "items": items, "itemsView": view}


SNIPPET_CONTEXT = 60  # characters kept on each side of a search match


def search_snippet(term: str, *texts: str | None) -> str:
    """The text around the first match of ``term`` (case-insensitive) in the first of
    ``texts`` that holds it; an empty term or no match gives the start of the first text."""
    pattern = re.compile(re.escape(term), re.IGNORECASE) if term else None
    for text in texts:
        if not text or pattern is None:
            continue
        found = pattern.search(text)
        if found is not None:
            start = max(0, found.start() - SNIPPET_CONTEXT)
            end = min(len(text), found.end() + SNIPPET_CONTEXT)
            head = "…" if start > 0 else ""
            tail = "…" if end < len(text) else ""
            return head + text[start:end] + tail
    first = next((t for t in texts if t), "")
    return first[: 2 * SNIPPET_CONTEXT]


def _enforcement(policy: dict[str, Any]) -> str:
    return sandbox.enforcement(policy)


class ThreadHandlers:
    def __init__(self, config: LoadedConfig, catalog: Catalog, manager: ThreadManager) -> None:
        self.config = config
        self.catalog = catalog
        self.manager = manager

    def register(self, r: MethodRegistry) -> None:
        t, c, i = Scope.THREAD, Scope.CONCURRENT, Scope.INLINE
        r.register("thread/start", ThreadStartParams, self.thread_start, scope=c)
        r.register("thread/resume", ThreadResumeParams, self.thread_resume, scope=t)
        r.register("thread/fork", ThreadForkParams, self.thread_fork, scope=t)
        r.register("thread/read", ThreadReadParams, self.thread_read, scope=c)
        r.register("thread/list", ThreadListParams, self.thread_list, scope=i)
        r.register(
            "thread/search", ThreadSearchParams, self.thread_search, experimental=True, scope=i
        )
        r.register("thread/turns/list", ThreadTurnsListParams, self.turns_list, scope=c)
        r.register("thread/loaded/list", ThreadLoadedListParams, self.loaded_list, scope=i)
        r.register("thread/archive", ThreadIdParams, self.thread_archive, scope=t)
        r.register("thread/unarchive", ThreadIdParams, self.thread_unarchive, scope=t)
        r.register("thread/delete", ThreadIdParams, self.thread_delete, scope=t)
        r.register("thread/name/set", ThreadNameSetParams, self.name_set, scope=t)
        r.register("thread/unsubscribe", ThreadIdParams, self.unsubscribe, scope=t)
        r.register(
            "thread/metadata/update", ThreadMetadataUpdateParams, self.metadata_update, scope=t
        )
        r.register("thread/compact/start", ThreadCompactStartParams, self.compact_start, scope=t)
        r.register("turn/start", TurnStartParams, self.turn_start, scope=t)
        r.register("turn/steer", TurnSteerParams, self.turn_steer, scope=t)
        r.register("turn/interrupt", TurnInterruptParams, self.turn_interrupt, scope=t)

    # -- settings ---------------------------------------------------------------------------
    def _settings(self, p: ThreadOverrides, base: ThreadSettings | None = None) -> ThreadSettings:
        cfg = self.config
        # The process-wide ``[features]`` switches first; the request's own map wins.
        features = cfg.get("features")
        seed = (
            {f"features.{k}": v for k, v in features.items() if isinstance(v, bool)}
            if isinstance(features, dict)
            else {}
        )
        extra = merge_overrides({**seed, **(p.config or {})})
        _check_config_overrides(extra)
        # Not inherited on fork nor kept on disk: each request's own map decides (as Codex).
        tools = tool_switches(extra, p.environments)
        if p.cwd is not None and "\0" in p.cwd:
            raise invalid_request("Invalid request: cwd must not contain a NUL character")
        cwd_text = p.cwd or (base.cwd if base else os.getcwd())
        cwd = Path(cwd_text)
        if not cwd.is_absolute():
            cwd = Path(os.getcwd()) / cwd
        provider = (
            p.model_provider
            or extra.get("model_provider")
            or (base.provider if base else self.catalog.default_provider)
        )
        if not self.catalog.has(provider):
            raise invalid_request(f"unknown model provider: {provider}")
        model = (
            p.model or extra.get("model") or (base.model if base else self.catalog.default_model)
        )
        approval = (
            p.approval_policy
            or extra.get("approval_policy")
            or (base.approval_policy if base else cfg.get("approval_policy", "on-request"))
        )
        mode = p.sandbox or extra.get("sandbox_mode")
        if p.permissions is not None:
            if mode is not None:
                raise invalid_request(
                    "Invalid request: `permissions` cannot be combined with `sandbox`"
                )
            policy = _profile_policy(p.permissions, cwd)
        elif mode is not None or base is None:
            try:
                policy = sandbox.from_mode(mode or cfg.get("sandbox_mode", "read-only"), cwd)
            except ValueError as exc:
                raise invalid_request(f"Invalid request: {exc}") from None
        else:
            policy = base.sandbox_policy
        return ThreadSettings(
            model=str(model),
            provider=str(provider),
            cwd=str(cwd),
            approval_policy=str(approval),
            sandbox_policy=policy,
            effort=extra.get("model_reasoning_effort")
            or (base.effort if base else cfg.get("model_reasoning_effort")),
            summary=extra.get("model_reasoning_summary")
            or (base.summary if base else cfg.get("model_reasoning_summary")),
            base_instructions=p.base_instructions or (base.base_instructions if base else None),
            developer_instructions=p.developer_instructions
            or (base.developer_instructions if base else cfg.get("developer_instructions")),
            tools=tools,
        )

    def _response(self, thread: LoadedThread, turns: list[Any]) -> dict[str, Any]:
        s = thread.settings
        return {
            "thread": {**thread.wire(turns), **self._section(thread.id)},
            "model": s.model,
            "modelProvider": s.provider,
            "serviceTier": None,
            "cwd": s.cwd,
            "instructionSources": [],
            "approvalPolicy": _wire_approval_policy(s.approval_policy),
            "approvalsReviewer": "user",
            "sandbox": s.sandbox_policy,
            "reasoningEffort": s.effort,
            # Ours, not Codex's: how the sandbox is enforced here. "bubblewrap" confines
            # commands; "approval" means bubblewrap is unavailable, so restricted commands are
            # asked about instead of run unconfined; "none" is danger-full-access.
            "sandboxEnforcement": _enforcement(s.sandbox_policy),
        }

    async def _respond_then_started(
        self, ctx: RequestContext, thread: LoadedThread, response: dict[str, Any]
    ) -> Any:
        await ctx.sender.respond(ctx.connection.id, ctx.request_id, response)
        await ctx.sender.notify_thread(thread.id, "thread/started", {"thread": thread.wire()})
        return NO_REPLY

    # -- threads ----------------------------------------------------------------------------
    async def thread_start(self, ctx: RequestContext, p: ThreadStartParams) -> Any:
        _require_experimental(ctx, "thread/start.permissions", p.permissions)
        thread = self.manager.start(
            self._settings(p),
            ephemeral=bool(p.ephemeral),
            conn_id=ctx.connection.id,
            originator=ctx.connection.client_name or "appserver",
        )
        return await self._respond_then_started(ctx, thread, self._response(thread, []))

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
        self.manager.outbox.subscribe(thread.id, conn_id)
        if thread.unload_handle is not None:
            thread.unload_handle.cancel()
            thread.unload_handle = None
        response = self._response(thread, [] if p.exclude_turns else turns)
        # History paging (the thread's historyMode is "paginated"): cursors that page the
        # turns and the items back from the newest, each including its anchor.
        response["turnsBackwardsCursor"] = (
            _turn_cursor(turns[-1]["id"], inclusive=True) if turns else None
        )
        response["itemsBackwardsCursor"] = newest_item_cursor(
            self.manager.items_by_id(thread.id) or []
        )
        response["initialTurnsPage"] = None
        await ctx.sender.respond(conn_id, ctx.request_id, response)
        # As Codex: the resuming client learns the thread's token usage at once.
        usage = self.manager.usage_update(thread)
        if usage is not None:
            await ctx.sender.notify(conn_id, "thread/tokenUsage/updated", usage)
        if waiting is not None:
            await self.manager.launch_waiting_turn(thread, waiting)
        # A client that comes back finds the approvals still waiting for an answer.
        await self.manager.outbox.replay_pending(thread.id, conn_id)
        return NO_REPLY

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
        return await self._respond_then_started(ctx, thread, self._response(thread, turns))

    async def thread_read(self, ctx: RequestContext, p: ThreadReadParams) -> dict[str, Any]:
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
            wire = {**thread.wire(turns), **self._section(thread.id)}
            return {"thread": wire, "readState": self._read_state(thread.id)}
        rec = self.manager.store.get(p.thread_id)
        if rec is None:
            raise invalid_request(f"thread not loaded: {p.thread_id}")
        return {
            "thread": {
                **self.manager.record_view(rec, include_turns=p.include_turns),
                **self._section(rec.id),
            },
            "readState": self._read_state(rec.id),
        }

    def _section(self, thread_id: str) -> dict[str, Any]:
        return section_fields(self.manager.store.sections, thread_id)

    def _thread_view(self, rec: ThreadRecord) -> dict[str, Any]:
        return {**self.manager.record_view(rec), **self._section(rec.id)}

    def _read_state(self, thread_id: str) -> dict[str, Any] | None:
        return self.manager.read_states.get(thread_id)

    def _list_page(
        self,
        view: Callable[[ThreadRecord], dict[str, Any]],
        *,
        sort_key: SortKey,
        **query: Any,
    ) -> dict[str, Any]:
        """One page of ``thread/list`` or ``thread/search``. ``backwardsCursor`` sits on the
        page's first thread: listed from it with the opposite ``sortDirection``, the threads
        before this page come back (a (time, id) position, so same-second threads are kept)."""
        try:
            records, next_cursor = self.manager.store.list(sort_key=sort_key, **query)
        except ValueError as exc:  # a malformed cursor, sort key or direction
            raise invalid_request(str(exc)) from None
        return {
            "data": [view(rec) for rec in records],
            "nextCursor": next_cursor,
            "backwardsCursor": encode_cursor(records[0], sort_key) if records else None,
        }

    async def thread_list(self, ctx: RequestContext, p: ThreadListParams) -> dict[str, Any]:
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
        # No thread is a sub-agent's or attached to another: those filters, when set to a
        # value, match nothing. ``sectionId`` absent lists every section, null none.
        related = p.parent_thread_id or p.ancestor_thread_id or p.attached_to_thread_id
        if related:
            return {"data": [], "readStates": {}, "nextCursor": None, "backwardsCursor": None}
        section = p.section_id if "section_id" in p.model_fields_set else ANY_SECTION
        query: dict[str, Any] = {
            "limit": p.limit,
            "archived": p.archived,
            "model_providers": p.model_providers or None,
            "cwd": p.cwd,
            "search_term": p.search_term,
            "excluded_ids": excluded or None,
            "section_id": section,
        }
        if p.sort_key == "section_position":
            page = self._section_page(p.cursor, p.sort_direction or "desc", query)
        else:
            sort_key: SortKey = "created_at" if p.sort_key in (None, "created_at") else "updated_at"
            page = self._list_page(
                self._thread_view,
                cursor=p.cursor,
                sort_key=sort_key,
                sort_direction=p.sort_direction or "desc",
                **query,
            )
        states = {t["id"]: self.manager.read_states.get(t["id"]) for t in page["data"]}
        return {**page, "readStates": {k: v for k, v in states.items() if v is not None}}

    def _section_page(
        self, cursor: str | None, direction: str, query: dict[str, Any]
    ) -> dict[str, Any]:
        """A ``section_position`` page: the sections' own order, paged by offset."""
        try:
            offset = decode_offset("section_position", cursor) if cursor is not None else 0
        except ValueError as exc:
            raise invalid_request(str(exc)) from None
        records, more = self.manager.store.list_by_section_position(
            offset=offset, sort_direction="desc" if direction == "desc" else "asc", **query
        )
        return {
            "data": [self._thread_view(r) for r in records],
            "nextCursor": encode_offset("section_position", offset + len(records))
            if more
            else None,
            "backwardsCursor": None,
        }

    async def thread_search(self, ctx: RequestContext, p: ThreadSearchParams) -> dict[str, Any]:
        def result(rec: ThreadRecord) -> dict[str, Any]:
            snippet = search_snippet(p.search_term, rec.name, rec.preview)
            return {"thread": self._thread_view(rec), "snippet": snippet}

        return self._list_page(
            result,
            cursor=p.cursor,
            limit=p.limit,
            sort_key="created_at" if p.sort_key == "created_at" else "updated_at",
            sort_direction=p.sort_direction or "desc",
            archived=p.archived,
            search_term=p.search_term,
        )

    async def turns_list(self, ctx: RequestContext, p: ThreadTurnsListParams) -> dict[str, Any]:
        """A page of a thread's turns, newest first unless ``sortDirection`` is ``asc``. A
        cursor names the turn a page continues after; ``backwardsCursor`` names the page's
        first turn, which the opposite direction then includes again (as the schema says)."""
        _check_thread_id(p.thread_id)
        check_history_pageable(self.manager, p.thread_id, "thread/turns/list")
        turns = self.manager.turns_by_id(p.thread_id)
        if turns is None:
            raise invalid_request(f"thread not loaded: {p.thread_id}")
        if p.sort_direction != "asc":
            turns.reverse()
        start = 0
        if p.cursor is not None:
            after, inclusive = _decode_turn_cursor(p.cursor)
            ids = [t["id"] for t in turns]
            if after not in ids:
                raise invalid_request(f"invalid cursor: {p.cursor}")
            start = ids.index(after) + (0 if inclusive else 1)
        limit = p.limit if p.limit else TURNS_PAGE_DEFAULT
        page = turns[start : start + min(limit, TURNS_PAGE_MAX)]
        more = start + len(page) < len(turns)
        view = p.items_view or "summary"
        return {
            "data": [_turn_view(t, view) for t in page],
            "nextCursor": _turn_cursor(page[-1]["id"], inclusive=False) if more else None,
            "backwardsCursor": _turn_cursor(page[0]["id"], inclusive=True) if page else None,
        }

    async def loaded_list(self, ctx: RequestContext, p: ThreadLoadedListParams) -> dict[str, Any]:
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

    async def thread_archive(self, ctx: RequestContext, p: ThreadIdParams) -> dict[str, Any]:
        _check_thread_id(p.thread_id)
        await self.manager.archive(p.thread_id)
        return {}

    async def thread_delete(self, ctx: RequestContext, p: ThreadIdParams) -> dict[str, Any]:
        _check_thread_id(p.thread_id)
        await self.manager.delete(p.thread_id)
        return {}

    async def thread_unarchive(self, ctx: RequestContext, p: ThreadIdParams) -> dict[str, Any]:
        _check_thread_id(p.thread_id)
        rec = await self.manager.unarchive(p.thread_id)
        return {"thread": self.manager.record_view(rec, include_turns=True)}

    async def name_set(self, ctx: RequestContext, p: ThreadNameSetParams) -> dict[str, Any]:
        self.manager.set_name(p.thread_id, p.name)
        await ctx.sender.broadcast(
            "thread/name/updated", {"threadId": p.thread_id, "threadName": p.name}
        )
        return {}

    async def unsubscribe(self, ctx: RequestContext, p: ThreadIdParams) -> dict[str, Any]:
        thread = self.manager.loaded.get(p.thread_id)
        if thread is None:
            return {"status": "notLoaded"}
        if not self.manager.outbox.unsubscribe(p.thread_id, ctx.connection.id):
            return {"status": "notSubscribed"}
        self.manager.maybe_schedule_unload(thread)
        return {"status": "unsubscribed"}

    async def metadata_update(
        self, ctx: RequestContext, p: ThreadMetadataUpdateParams
    ) -> dict[str, Any]:
        thread = self.manager.loaded.get(p.thread_id)
        rec = self.manager.store.get(p.thread_id)
        if thread is None and rec is None:
            raise invalid_request(f"thread not found: {p.thread_id}")
        current = dict((thread.git_info if thread else rec.git_info if rec else None) or {})
        if p.git_info is not None:
            for key in ("sha", "branch", "originUrl"):
                if key in p.git_info:
                    current[key] = p.git_info[key]
        git_info = current if any(v is not None for v in current.values()) else None
        if thread is not None:
            thread.git_info = git_info
        if rec is not None:
            self.manager.store.set_git_info(p.thread_id, git_info)
        if thread is not None:
            return {"thread": thread.wire()}
        rec = self.manager.store.get(p.thread_id)
        assert rec is not None
        return {"thread": self.manager.record_view(rec)}

    # -- turns ------------------------------------------------------------------------------
    async def turn_start(self, ctx: RequestContext, p: TurnStartParams) -> Any:
        _require_experimental(ctx, "turn/start.permissions", p.permissions)
        _require_experimental(ctx, "turn/start.collaborationMode", p.collaboration_mode)
        thread = self.manager.get_loaded(p.thread_id)
        user_input = check_user_input(p.input)
        if thread.active_turn is not None:
            message = f"thread {thread.id} already has an active turn"
            if thread.active_turn.kind == "compact":
                # The schema's activeTurnNotSteerable covers turn/start as well as turn/steer.
                raise _not_steerable(message)
            raise invalid_request(message)
        cwd = p.cwd
        if cwd is not None and not Path(cwd).is_absolute():
            raise invalid_request("cwd must be an absolute path")
        if cwd is not None and "\0" in cwd:
            raise invalid_request("Invalid request: cwd must not contain a NUL character")
        sandbox_policy = p.sandbox_policy
        if sandbox_policy is not None:
            try:
                sandbox.SandboxPolicy.from_dict(sandbox_policy)
            except ValueError as exc:
                raise invalid_request(f"Invalid request: sandboxPolicy: {exc}") from None
        if p.permissions is not None:
            if sandbox_policy is not None:
                raise invalid_request(
                    "Invalid request: `permissions` cannot be combined with `sandboxPolicy`"
                )
            sandbox_policy = _profile_policy(p.permissions, Path(cwd or thread.settings.cwd))
        mode = p.collaboration_mode
        settings = mode.settings if mode is not None else None
        thread.settings = thread.settings.with_overrides(
            model=p.model or (settings.model if settings else None),
            cwd=cwd,
            approval_policy=p.approval_policy,
            sandbox_policy=sandbox_policy,
            effort=p.effort or (settings.reasoning_effort if settings else None),
            summary=p.summary,
        )
        # A turn in another collaboration mode than the history's tells the model first.
        switch = (
            collaboration.mode_switch(
                thread.history, mode.mode, settings.developer_instructions if settings else None
            )
            if mode is not None
            else None
        )
        turn = self.manager.begin_turn(thread)
        turn.output_schema = p.output_schema
        await ctx.sender.respond(ctx.connection.id, ctx.request_id, {"turn": turn.wire()})
        await self.manager.launch_turn(thread, turn, user_input, [switch] if switch else None)
        return NO_REPLY

    async def compact_start(self, ctx: RequestContext, p: ThreadCompactStartParams) -> Any:
        """Reply ``{}``, then run a compaction turn: its progress is the turn's notifications."""
        thread = self.manager.get_loaded(p.thread_id)
        turn = self.manager.begin_turn(thread, "compact")
        await ctx.sender.respond(ctx.connection.id, ctx.request_id, {})
        await self.manager.launch_compaction(thread, turn)
        return NO_REPLY

    async def turn_steer(self, ctx: RequestContext, p: TurnSteerParams) -> dict[str, Any]:
        thread = self.manager.get_loaded(p.thread_id)
        if not p.input:
            raise invalid_request("input must not be empty")
        if not p.expected_turn_id:
            raise invalid_request("expectedTurnId must not be empty")
        turn = thread.active_turn
        if turn is None:
            raise invalid_request("no active turn to steer")
        if turn.id != p.expected_turn_id:
            raise invalid_request(
                f"expected active turn id `{p.expected_turn_id}` but found `{turn.id}`"
            )
        if turn.kind == "compact":
            raise _not_steerable("cannot steer a compact turn")
        turn.steer_inputs.append(check_user_input(p.input))
        return {"turnId": turn.id}

    async def turn_interrupt(self, ctx: RequestContext, p: TurnInterruptParams) -> Any:
        thread = self.manager.get_loaded(p.thread_id)
        turn = thread.active_turn
        if turn is None:
            raise invalid_request("no active turn to interrupt")
        if p.turn_id and p.turn_id != turn.id:
            raise invalid_request(f"expected active turn id `{p.turn_id}` but found `{turn.id}`")
        await self.manager.interrupt(thread)
        await ctx.sender.respond(ctx.connection.id, ctx.request_id, {})
        turn.may_complete.set()
        return NO_REPLY
