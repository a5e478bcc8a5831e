"""``ThreadManager``: threads start, load, resume, fork, list, archive, and run turns
(regular ones, compactions, reviews and goal continuations).

Owns the table of loaded threads, their rollouts (created with the first user message,
appended as the turn goes), the index updates, subscriptions through the ``Outbox``, and the
turn tasks. A rollout or index write that fails (disk full) never fails a turn or the server:
the thread's subscribers get a ``warning`` naming the failed write, the rollout keeps the
lines and both are retried every ``PERSIST_RETRY_S`` until they succeed (reads meanwhile
include the waiting lines). Mutations of one thread arrive here one at a time (the processor
serialises them per thread); different threads run concurrently. It must never block the
event loop on a model call or a command: turns run as tasks.

It is the server's only door into the engine: the handlers call its methods (``attach``,
``detach``, ``steerable_turn``/``steer``, ``active_turn``/``interrupt``/``let_complete``,
``stored``, ``list_stored``, ``read_state``, ``update_git_info``, ...) and never touch the
store, the outbox or a turn's internals. What it refuses it raises as ``EngineError`` (never
a JSON-RPC error: ``server.engine_errors`` maps them); what it shows is built by
``engine.views``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from appserver.engine import client_requests, client_tools, compaction, goals, views
from appserver.engine.errors import EngineError, NotSteerable
from appserver.engine.ids import uuid7
from appserver.engine.mcp.manager import McpManager
from appserver.engine.mcp.turn import ThreadMcp
from appserver.engine.ports import Outbox
from appserver.engine.providers.events import ModelClient, ProviderError, ToolCall
from appserver.engine.skills.catalog import SkillsCatalog
from appserver.engine.skills.turn import TurnSkills
from appserver.engine.thread_state import (
    ActiveTurn,
    LoadedThread,
    ThreadSettings,
    TurnKind,
    now_ms,
    now_s,
)
from appserver.engine.tools.command_policy import CommandPolicy
from appserver.engine.turn_runner import RetryBudget, TurnRunner
from appserver.store import history
from appserver.store.index import ThreadStore
from appserver.store.paging import encode_cursor
from appserver.store.read_states import ReadStates, RevisionMismatch
from appserver.store.record import ThreadRecord
from appserver.store.rollout import RolloutWriter, read_rollout

if TYPE_CHECKING:
    from appserver.protocol.wire_types import (
        Thread,
        ThreadItemEntry,
        ThreadReadState,
        ThreadTokenUsageUpdatedNotification,
        Turn,
    )

log = logging.getLogger("appserver.engine")

PERSIST_RETRY_S = 1.0  # how often writes that failed (disk full) are tried again

ClientFor = Callable[[str], tuple[ModelClient, RetryBudget]]  # provider id → client, retries
ContextWindowFor = Callable[[str], int | None]  # model slug → usable context window (tokens)
TurnFinishedHook = Callable[[LoadedThread, ActiveTurn, str], Coroutine[Any, Any, None]]


class ThreadManager:
    def __init__(
        self,
        store: ThreadStore,
        outbox: Outbox,
        client_for: ClientFor,
        *,
        idle_unload_s: float = 1800.0,
        commands: CommandPolicy | None = None,
        context_window_for: ContextWindowFor | None = None,
        skills: SkillsCatalog | None = None,
        mcp: McpManager | None = None,
    ) -> None:
        self.mcp = mcp
        self.commands = commands or CommandPolicy()
        self.context_window_for: ContextWindowFor = context_window_for or (lambda model: None)
        self.skills = skills
        self.store = store
        self.read_states = ReadStates(store.home)
        self.outbox = outbox
        self.client_for = client_for
        self.idle_unload_s = idle_unload_s
        self.loaded: dict[str, LoadedThread] = {}
        self.originators: dict[str, str] = {}
        self._turn_tasks: set[asyncio.Task[None]] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        # Threads whose rollout lines or index row could not be written, and the retry timer.
        self._unsaved: dict[str, LoadedThread] = {}
        self._index_dirty: set[str] = set()
        # Stored threads whose last turn was waiting on an approval: id → (turn, started_at).
        self._waiting: dict[str, tuple[str, int]] = {}
        self._told: set[tuple[str, str]] = set()  # (thread, what failed) a warning went out for
        self._retry_handle: asyncio.TimerHandle | None = None
        self._background: set[asyncio.Task[Any]] = set()
        # Called after each turn has ended (thread, turn, status), e.g. by ``goals``.
        self.turn_finished_hooks: list[TurnFinishedHook] = []

    # -- lookup -----------------------------------------------------------------------------
    def get_loaded(self, thread_id: str) -> LoadedThread:
        thread = self.loaded.get(thread_id)
        if thread is None:
            raise EngineError(f"thread not found: {thread_id}")
        return thread

    def _record(self, thread_id: str) -> ThreadRecord:
        rec = self.store.get(thread_id)
        if rec is None:
            raise EngineError(f"no rollout found for thread id {thread_id}")
        return rec

    def stored(self, thread_id: str) -> ThreadRecord | None:
        """A thread's index row; None when it was never materialized (or is deleted)."""
        return self.store.get(thread_id)

    def exists(self, thread_id: str) -> bool:
        return thread_id in self.loaded or self.store.get(thread_id) is not None

    def list_stored(self, **query: Any) -> tuple[list[ThreadRecord], str | None, str | None]:
        """A page of stored threads (``ThreadStore.list``'s query), its next cursor, and the
        backwards cursor on its first thread: listed from it with the opposite direction,
        the threads before this page come back (a (time, id) position, so same-second
        threads are kept). A malformed cursor, sort key or direction is an ``EngineError``."""
        try:
            records, next_cursor = self.store.list(**query)
        except ValueError as exc:
            raise EngineError(str(exc)) from None
        backwards = encode_cursor(records[0], query["sort_key"]) if records else None
        return records, next_cursor, backwards

    def list_stored_by_section(self, **query: Any) -> tuple[list[ThreadRecord], bool]:
        """A page of stored threads in section order
        (``ThreadStore.list_by_section_position``'s query) and whether more follow."""
        return self.store.list_by_section_position(**query)

    def read_state(self, thread_id: str) -> ThreadReadState | None:
        """Where the user stopped reading the thread (``ThreadReadState``); None: all read."""
        return cast("ThreadReadState | None", self.read_states.get(thread_id))

    def update_read_state(
        self, thread_id: str, operation: str, expected_revision: str | None
    ) -> ThreadReadState:
        """Mark the thread read or unread (``thread/readState/update``); the new state."""
        thread = self.loaded.get(thread_id)
        if thread is not None and thread.ephemeral:
            raise EngineError("ephemeral threads have no read state")
        if self.store.get(thread_id) is None:
            raise EngineError(f"thread not found: {thread_id}")
        turns = self.turns_by_id(thread_id) or []
        try:
            state = self.read_states.update(
                thread_id, operation, expected_revision, turns[-1]["id"] if turns else None
            )
            return cast("ThreadReadState", state)
        except RevisionMismatch:
            raise EngineError(
                f"read state of thread {thread_id} has changed since revision "
                f"`{(expected_revision or '')[:100]}`; read it again"
            ) from None

    def check_pageable(self, thread_id: str, method: str) -> None:
        """As the reference: an ephemeral thread has no history to page, and a new thread has
        none before its first user message."""
        thread = self.loaded.get(thread_id)
        if thread is None:
            return
        if thread.ephemeral:
            raise EngineError(f"ephemeral threads do not support {method}")
        if not thread.materialized:
            raise EngineError(
                f"thread {thread_id} is not materialized yet; {method} is unavailable before "
                "first user message"
            )

    def update_git_info(self, thread_id: str, given: dict[str, Any] | None) -> None:
        """Set the ``sha``/``branch``/``originUrl`` given (a null clears one; the others stay);
        no value left means no git info."""
        thread = self.loaded.get(thread_id)
        rec = self.store.get(thread_id)
        if thread is None and rec is None:
            raise EngineError(f"thread not found: {thread_id}")
        current = dict((thread.git_info if thread else rec.git_info if rec else None) or {})
        if given is not None:
            for key in ("sha", "branch", "originUrl"):
                if key in given:
                    current[key] = given[key]
        git_info = current if any(v is not None for v in current.values()) else None
        if thread is not None:
            thread.git_info = git_info
        if rec is not None:
            self.store.set_git_info(thread_id, git_info)

    # -- start / resume / fork --------------------------------------------------------------
    def start(
        self,
        settings: ThreadSettings,
        *,
        ephemeral: bool,
        conn_id: int,
        originator: str,
        dynamic_tools: list[Any] | None = None,
    ) -> LoadedThread:
        """A new thread; ``dynamic_tools`` are the client's tools (checked by
        ``client_tools.check``: a bad one is an ``EngineError``), kept in its session_meta."""
        tools = client_tools.check(dynamic_tools) if dynamic_tools else []
        thread_id = uuid7()
        created = datetime.now(UTC)
        path = None if ephemeral else self.store.rollout_path_for(thread_id, created)
        thread = LoadedThread(
            id=thread_id,
            created_at=int(created.timestamp()),
            settings=settings,
            path=path,
            ephemeral=ephemeral,
            writer=RolloutWriter(path) if path is not None else None,
            dynamic_tools=tools,
        )
        self._load(thread, originator)
        self.outbox.subscribe(thread_id, conn_id)
        return thread

    async def attach_mcp(self, thread: LoadedThread) -> None:
        """Start the thread's MCP servers in the background (``McpManager.attach``)."""
        if self.mcp is not None:
            own = {cfg.name: cfg for cfg in thread.settings.mcp_servers}
            await self.mcp.attach(thread.id, own)

    def _load(self, thread: LoadedThread, originator: str) -> None:
        self.loaded[thread.id] = thread
        self.originators[thread.id] = originator

    def load_stored(self, thread_id: str, originator: str) -> tuple[LoadedThread, list[Turn]]:
        """Load a thread from its rollout; returns it with its rebuilt turns."""
        rec = self._record(thread_id)
        if rec.archived:
            raise EngineError(f"thread {thread_id} is archived; unarchive it first")
        contents = read_rollout(rec.path)
        lines = contents.lines
        meta = history.thread_meta(lines)
        settings = _settings_from(lines, meta)
        thread = LoadedThread(
            id=thread_id,
            created_at=rec.created_at,
            settings=settings,
            path=rec.path,
            forked_from_id=rec.forked_from_id,
            name=rec.name,
            preview=rec.preview,
            git_info=rec.git_info,
            source=rec.source,
            cli_version=rec.cli_version or meta.get("cli_version", ""),
            updated_at=rec.updated_at,
            history=history.rebuild_history(lines),
            writer=RolloutWriter(rec.path),
            dynamic_tools=client_tools.stored(meta),
            goal=goals.stored(lines),
        )
        total = history.last_token_total(lines)
        if total:
            thread.token_total = total
        self._load(thread, originator)
        waiting = history.waiting_turn(lines)
        if waiting is not None and _unanswered_calls(thread.history):
            self._waiting[thread_id] = waiting
        return thread, _turns(lines)

    def begin_waiting_turn(self, thread: LoadedThread) -> ActiveTurn | None:
        """The turn a restart cut short while it waited on an approval, made active again
        (``turns_of`` then shows it in progress); None when there is none."""
        waiting = self._waiting.pop(thread.id, None)
        if waiting is None or thread.active_turn is not None:
            return None
        turn_id, started_at = waiting
        turn = ActiveTurn(id=turn_id, started_at=started_at, started_ms=started_at * 1000)
        thread.active_turn = turn
        thread.system_error = False
        return turn

    async def launch_waiting_turn(self, thread: LoadedThread, turn: ActiveTurn) -> None:
        """Go on with a turn ``begin_waiting_turn`` returned: its unanswered tool calls run
        again (asking for approval as before), then the turn continues."""
        calls = _unanswered_calls(thread.history)
        await self._launch(thread, turn, lambda runner: runner.resume(calls), announce=False)

    def record_view(self, rec: ThreadRecord, *, include_turns: bool = False) -> Thread:
        """A stored thread on the wire: its live status when loaded, turns read on request."""
        status = views.thread_status(self.loaded.get(rec.id))
        turns = _turns(read_rollout(rec.path).lines) if include_turns else None
        return views.record_view(rec, status, turns)

    def turns_of(self, thread: LoadedThread) -> list[Turn]:
        if thread.path is None or not thread.materialized:
            return []
        live = thread.active_turn.id if thread.active_turn else None
        return _turns(self._lines_of(thread), live_turn_id=live)

    def _lines_of(self, thread: LoadedThread) -> list[dict[str, Any]]:
        """A loaded thread's rollout: what is on disk, then the lines waiting to be written."""
        assert thread.path is not None
        try:
            lines = read_rollout(thread.path).lines
        except FileNotFoundError:
            lines = []
        if thread.writer is not None:
            lines += thread.writer.pending_lines()
        return lines

    def turns_by_id(self, thread_id: str) -> list[Turn] | None:
        """A thread's turns, loaded or only stored; None when there is no such thread."""
        thread = self.loaded.get(thread_id)
        if thread is not None:
            return self.turns_of(thread)
        rec = self.store.get(thread_id)
        return None if rec is None else _turns(read_rollout(rec.path).lines)

    def usage_update(self, thread: LoadedThread) -> ThreadTokenUsageUpdatedNotification | None:
        """The ``thread/tokenUsage/updated`` params a client resuming ``thread`` gets: the
        thread's last recorded usage (as Codex replays it), or None before any usage."""
        if thread.path is None or not thread.materialized:
            return None
        lines = read_rollout(thread.path).lines
        info = history.last_token_usage(lines)
        total = history.last_token_total(lines)
        turns = _turns(lines)
        if info is None or not total or not turns:
            return None
        last = info.get("last_token_usage")
        wire_last = history.wire_usage(last) if isinstance(last, dict) else dict(total)
        usage = {
            "total": total,
            "last": wire_last,
            "modelContextWindow": self.context_window_for(thread.settings.model),
        }
        return {
            "threadId": thread.id,
            "turnId": turns[-1]["id"],
            "tokenUsage": views.wire_usage(usage),
        }

    def items_by_id(self, thread_id: str) -> list[ThreadItemEntry] | None:
        """A thread's completed items (``ThreadItemEntry``), in recorded order; None when
        there is no such thread."""
        thread = self.loaded.get(thread_id)
        if thread is not None:
            if thread.path is None or not thread.materialized:
                return []
            lines = read_rollout(thread.path).lines
        else:
            rec = self.store.get(thread_id)
            if rec is None:
                return None
            lines = read_rollout(rec.path).lines
        return cast("list[ThreadItemEntry]", history.item_entries(lines))

    def fork(
        self,
        source_id: str,
        settings_override: Callable[[ThreadSettings], ThreadSettings],
        *,
        ephemeral: bool,
        conn_id: int,
        originator: str,
    ) -> tuple[LoadedThread, list[Turn]]:
        loaded = self.loaded.get(source_id)
        if loaded is not None:
            if loaded.path is None or not loaded.materialized:
                lines: list[dict[str, Any]] = []
            else:
                lines = self._lines_of(loaded)
            base_settings, source_history = loaded.settings, list(loaded.history)
            tools = loaded.dynamic_tools
        else:
            rec = self._record(source_id)
            lines = read_rollout(rec.path).lines
            meta = history.thread_meta(lines)
            base_settings = _settings_from(lines, meta)
            source_history = history.rebuild_history(lines)
            tools = client_tools.stored(meta)
        thread = self.start(
            settings_override(base_settings),
            ephemeral=ephemeral,
            conn_id=conn_id,
            originator=originator,
            dynamic_tools=tools,  # the client's tools come along; its goal does not
        )
        thread.forked_from_id = source_id
        thread.history = source_history
        copied = [ln for ln in lines if ln.get("type") != "session_meta" and not goals.is_line(ln)]
        if copied and thread.writer is not None:
            self._materialize(thread)
            for ln in copied:
                thread.writer.append(ln["type"], ln["payload"])
            if loaded is not None:
                thread.preview = loaded.preview
            self._index(thread)
        return thread, _turns(lines) if lines else []

    # -- persistence ------------------------------------------------------------------------
    def _materialize(self, thread: LoadedThread) -> None:
        writer = thread.writer
        if writer is None or writer.materialized:
            return
        meta = thread.session_meta(self.originators.get(thread.id, "appserver"))
        meta["timestamp"] = datetime.fromtimestamp(thread.created_at, UTC).isoformat()
        writer.append("session_meta", meta)

    def _index(self, thread: LoadedThread) -> None:
        if thread.path is None or not thread.materialized:
            return
        thread.updated_at = now_s()
        try:
            self._upsert(thread)
        except (sqlite3.Error, OSError) as exc:
            self._index_dirty.add(thread.id)
            self._write_failed(thread, "the thread index", exc)
        else:
            self._index_dirty.discard(thread.id)

    def _upsert(self, thread: LoadedThread) -> None:
        assert thread.path is not None
        self.store.upsert(
            ThreadRecord(
                id=thread.id,
                path=thread.path,
                created_at=thread.created_at,
                updated_at=thread.updated_at,
                cwd=thread.settings.cwd,
                model_provider=thread.settings.provider,
                model=thread.settings.model,
                preview=thread.preview,
                name=thread.name,
                source=thread.source,
                cli_version=thread.cli_version,
                forked_from_id=thread.forked_from_id,
                git_info=thread.git_info,
            )
        )

    def recorder(self, thread: LoadedThread) -> Callable[[str, dict[str, Any]], None]:
        def record(kind: str, payload: dict[str, Any]) -> None:
            if thread.writer is None:
                return
            try:
                self._materialize(thread)
                thread.writer.append(kind, payload)
            except OSError as exc:
                # The line waits in the writer (in order) until it can be written.
                self._write_failed(thread, "the conversation transcript", exc)

        return record

    # -- failed writes (disk full) ----------------------------------------------------------
    def _write_failed(self, thread: LoadedThread, what: str, exc: BaseException) -> None:
        """Tell the thread's clients once per episode (and kind of write), and retry until
        the write succeeds."""
        first = (thread.id, what) not in self._told
        self._told.add((thread.id, what))
        self._unsaved[thread.id] = thread
        if self._retry_handle is None:
            loop = asyncio.get_running_loop()
            self._retry_handle = loop.call_later(PERSIST_RETRY_S, self._retry_writes)
        if not first:
            return
        log.error("thread %s: failed to save %s: %s; retrying", thread.id, what, exc)
        message = (
            f"Failed to save {what} of thread {thread.id}; the server keeps retrying "
            f"until it can be written. Error: {exc}"
        )
        task = asyncio.ensure_future(
            self.outbox.notify_thread(
                thread.id, "warning", {"message": message, "threadId": thread.id}
            )
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _retry_writes(self) -> None:
        self._retry_handle = None
        for thread_id, thread in list(self._unsaved.items()):
            writer = thread.writer
            written = writer is None or writer.closed or writer.retry()
            if written and thread_id in self._index_dirty:
                try:
                    self._upsert(thread)
                except (sqlite3.Error, OSError):
                    written = False
                else:
                    self._index_dirty.discard(thread_id)
            if written:
                del self._unsaved[thread_id]
                self._told = {told for told in self._told if told[0] != thread_id}
                log.info("thread %s: saved again after failed writes", thread_id)
        if self._unsaved:
            loop = asyncio.get_running_loop()
            self._retry_handle = loop.call_later(PERSIST_RETRY_S, self._retry_writes)

    def unsaved(self) -> int:
        """How many threads have writes waiting (the disk was full)."""
        return len(self._unsaved)

    # -- turns ------------------------------------------------------------------------------
    @staticmethod
    def check_can_begin(thread: LoadedThread, kind: TurnKind = "regular") -> None:
        """A thread runs one turn at a time."""
        active = thread.active_turn
        if active is not None:
            message = f"thread {thread.id} already has an active turn"
            if active.kind != "regular" and kind == "regular":
                # The schema's activeTurnNotSteerable covers turn/start as well as turn/steer.
                raise NotSteerable(message, active.kind)
            raise EngineError(message)

    def begin_turn(self, thread: LoadedThread, kind: TurnKind = "regular") -> ActiveTurn:
        """Reserve the thread for a new turn (the caller replies before ``launch_turn`` or
        ``launch_compaction``)."""
        self.check_can_begin(thread, kind)
        self._keep_loaded(thread)
        turn = ActiveTurn(id=uuid7(), started_at=now_s(), started_ms=now_ms(), kind=kind)
        thread.active_turn = turn
        thread.system_error = False
        return turn

    async def launch_turn(
        self,
        thread: LoadedThread,
        turn: ActiveTurn,
        user_input: list[dict[str, Any]],
        context: list[dict[str, Any]] | None = None,
    ) -> None:
        """Run a regular turn; ``context`` items go into the model history before the
        user's input (see ``TurnRunner.run``)."""
        skills = await self._turn_skills(thread)
        await self._launch(
            thread, turn, lambda runner: runner.run(user_input, context), skills=skills
        )

    async def _turn_skills(self, thread: LoadedThread) -> TurnSkills | None:
        """The thread's cwd's skills, scanned again now (``skills/changed`` to every client
        when they changed since the last scan); None when there is no catalog or the scan
        failed (logged: skills never fail a turn)."""
        if self.skills is None:
            return None
        try:
            found, changed = await asyncio.to_thread(self.skills.scan, Path(thread.settings.cwd))
        except Exception:
            log.exception("skills scan for %s failed", thread.settings.cwd)
            return None
        if changed:
            await self.outbox.broadcast("skills/changed", {})
        return TurnSkills.of([s for s in found.skills if s.enabled])

    async def launch_body(
        self,
        thread: LoadedThread,
        turn: ActiveTurn,
        body: Callable[[TurnRunner], Coroutine[Any, Any, None]],
    ) -> None:
        """Run a turn whose ``body`` is not a model conversation (a review, a goal
        continuation, the user's shell command): its own module owns the body; ``begin_turn``
        first, and it is announced and ended like any turn."""
        await self._launch(thread, turn, body)

    async def launch_compaction(self, thread: LoadedThread, turn: ActiveTurn) -> None:
        """Run a compaction turn (``begin_turn(thread, "compact")``) on the thread."""
        await self._launch(thread, turn, compaction.run)

    async def _launch(
        self,
        thread: LoadedThread,
        turn: ActiveTurn,
        body: Callable[[TurnRunner], Coroutine[Any, Any, None]],
        *,
        announce: bool = True,
        skills: TurnSkills | None = None,
    ) -> None:
        """Announce the turn (rollout, status, ``turn/started``; a resumed turn only its
        context and status) and run ``body`` as its task."""
        record = self.recorder(thread)
        try:
            client, retries = self.client_for(thread.settings.provider)
        except Exception:
            log.exception("no model client for provider %s", thread.settings.provider)
            client, retries = _FailingClient(thread.settings.provider), RetryBudget()
        runner = TurnRunner(
            thread,
            turn,
            self.outbox,
            client,
            retries=retries,
            originator=self.originators.get(thread.id, "appserver"),
            record=record,
            on_finished=lambda status: self._turn_finished(thread, turn, status),
            commands=self.commands,
            # The home holds auth.json and every rollout: never read without asking.
            protected_paths=(self.store.home,),
            context_window=self.context_window_for(thread.settings.model),
            skills=skills,
            mcp=ThreadMcp(self.mcp, thread.id) if self.mcp is not None else None,
        )
        await self.outbox.cancel_thread_requests(thread.id)
        record("turn_context", thread.settings.to_context(turn.id))
        if announce:
            record(
                "event_msg",
                {"type": "task_started", "turn_id": turn.id, "started_at": turn.started_at},
            )
        self._index(thread)
        await self.outbox.broadcast(
            "thread/status/changed", views.status_changed(thread.id, thread)
        )
        if announce:
            await self.outbox.notify_thread(
                thread.id, "turn/started", {"threadId": thread.id, "turn": views.turn_view(turn)}
            )
        task = asyncio.create_task(body(runner))
        turn.task = task
        self._turn_tasks.add(task)
        self._idle.clear()
        task.add_done_callback(self._turn_task_done)

    def _turn_task_done(self, task: asyncio.Task[None]) -> None:
        self._turn_tasks.discard(task)
        if not self._turn_tasks:
            self._idle.set()

    async def _turn_finished(self, thread: LoadedThread, turn: ActiveTurn, status: str) -> None:
        writer = thread.writer
        if writer is not None and thread.materialized:
            self._index(thread)
            if turn.kind == "regular":
                # A finished turn is something for the user to read (thread/readState).
                state = self.read_states.turn_finished(thread.id, turn.id)
                await self.outbox.broadcast(
                    "thread/readState/changed",
                    {"threadId": thread.id, "readState": cast("ThreadReadState", state)},
                )
            # The turn's lines are written already (unbuffered: a kill -9 loses none of them);
            # the fsync that also survives power loss takes milliseconds, so it runs off the
            # loop while turn/completed and everyone else's traffic go out.
            try:
                await asyncio.to_thread(writer.flush)
            except OSError:  # EBADF included: an archive may close the file meanwhile
                log.warning("could not fsync the rollout of thread %s", thread.id, exc_info=True)
        for hook in self.turn_finished_hooks:
            try:
                await hook(thread, turn, status)
            except Exception:
                log.exception("a turn-finished hook failed for thread %s", thread.id)
        self.maybe_schedule_unload(thread)

    def steerable_turn(self, thread: LoadedThread, expected_turn_id: str) -> ActiveTurn:
        """The running turn, when it is the one the client expects and takes input."""
        turn = thread.active_turn
        if turn is None:
            raise EngineError("no active turn to steer")
        if turn.id != expected_turn_id:
            raise EngineError(f"expected active turn id `{expected_turn_id}` but found `{turn.id}`")
        if turn.kind != "regular":
            raise NotSteerable(f"cannot steer a {turn.kind} turn", turn.kind)
        return turn

    @staticmethod
    def steer(turn: ActiveTurn, user_input: list[dict[str, Any]]) -> None:
        """Add input to a running turn (``steerable_turn``): read before its next request."""
        turn.steer_inputs.append(user_input)

    def active_turn(self, thread: LoadedThread, turn_id: str | None = None) -> ActiveTurn:
        """The running turn (the one named, when ``turn_id`` is given)."""
        turn = thread.active_turn
        if turn is None:
            raise EngineError("no active turn to interrupt")
        if turn_id and turn_id != turn.id:
            raise EngineError(f"expected active turn id `{turn_id}` but found `{turn.id}`")
        return turn

    async def interrupt(self, thread: LoadedThread) -> ActiveTurn:
        """Stop the running turn and wait until it has stopped; its ``turn/completed`` waits
        for ``let_complete`` (the interrupt's reply goes out first, spec §4.5.9)."""
        turn = thread.active_turn
        if turn is None or turn.task is None:
            raise EngineError("no active turn to interrupt")
        turn.interrupt_requested = True
        turn.task.cancel()
        await turn.stopped.wait()
        return turn

    @staticmethod
    def let_complete(turn: ActiveTurn) -> None:
        """An interrupted turn may now send ``turn/completed``."""
        turn.may_complete.set()

    def active_turns(self) -> int:
        return len(self._turn_tasks)

    async def wait_idle(self) -> None:
        while self._turn_tasks:
            await self._idle.wait()

    # -- subscriptions and unloading --------------------------------------------------------
    def attach(self, thread: LoadedThread, conn_id: int) -> None:
        """Subscribe a connection to a thread it resumes; the thread stays loaded."""
        self.outbox.subscribe(thread.id, conn_id)
        self._keep_loaded(thread)

    def detach(self, thread_id: str, conn_id: int) -> str:
        """Unsubscribe a connection: ``notLoaded``, ``notSubscribed`` or ``unsubscribed``;
        a thread nobody watches any more is unloaded after ``idle_unload_s``."""
        thread = self.loaded.get(thread_id)
        if thread is None:
            return "notLoaded"
        if not self.outbox.unsubscribe(thread_id, conn_id):
            return "notSubscribed"
        self.maybe_schedule_unload(thread)
        return "unsubscribed"

    async def fail_unwatched_requests(self) -> int:
        """After a client went away: fail the requests only a connected client can answer
        (client tools, questions) of the threads nobody is subscribed to any more."""
        return await client_requests.fail_unwatched(list(self.loaded.values()), self.outbox)

    async def replay_pending(self, thread_id: str, conn_id: int) -> None:
        """Send a connection that comes back the approvals still waiting for an answer."""
        await self.outbox.replay_pending(thread_id, conn_id)

    @staticmethod
    def _keep_loaded(thread: LoadedThread) -> None:
        if thread.unload_handle is not None:
            thread.unload_handle.cancel()
            thread.unload_handle = None

    def maybe_schedule_unload(self, thread: LoadedThread) -> None:
        if thread.active_turn is not None or self.outbox.subscribers(thread.id):
            return
        if thread.unload_handle is not None:
            thread.unload_handle.cancel()
        loop = asyncio.get_running_loop()
        thread.unload_handle = loop.call_later(
            self.idle_unload_s, lambda: asyncio.ensure_future(self.unload(thread.id))
        )

    async def unload(self, thread_id: str, *, force: bool = False) -> None:
        """Drop an idle thread from memory; without ``force`` only when nobody watches it."""
        thread = self.loaded.get(thread_id)
        if thread is None or thread.active_turn is not None:
            return
        if self.outbox.subscribers(thread_id) and not force:
            return
        if thread_id in self._unsaved and not force:
            return  # its writes still wait for space; it stays until they are done
        self._unsaved.pop(thread_id, None)
        self._index_dirty.discard(thread_id)
        thread.unload_handle = None
        del self.loaded[thread_id]
        self.originators.pop(thread_id, None)
        if self.mcp is not None:
            await self.mcp.detach(thread_id)
        if thread.writer is not None:
            thread.writer.close()
        # Both go to every connection, as Codex sends them: an unloaded thread has no
        # subscribers left to tell, yet clients that listed it need to know it closed.
        await self.outbox.broadcast("thread/status/changed", views.status_changed(thread_id, None))
        await self.outbox.broadcast("thread/closed", {"threadId": thread_id})

    # -- archive ----------------------------------------------------------------------------
    async def archive(self, thread_id: str) -> None:
        thread = self.loaded.get(thread_id)
        if thread is not None:
            if thread.active_turn is not None:
                raise EngineError(f"thread {thread_id} has an active turn; interrupt it first")
            if thread.ephemeral:
                raise EngineError(f"thread {thread_id} is ephemeral and cannot be archived")
        rec = self.store.get(thread_id)
        if rec is None:
            if thread is not None:
                raise EngineError(f"thread {thread_id} is not materialized yet; nothing to archive")
            raise EngineError(f"no rollout found for thread id {thread_id}")
        if thread is not None:
            await self.unload(thread_id, force=True)
        self.store.archive(thread_id)
        await self.outbox.broadcast("thread/archived", {"threadId": thread_id})

    async def delete(self, thread_id: str) -> None:
        """Forget a thread: unload it, remove its rollout and index row, tell every client.
        A running turn must be interrupted first; an ephemeral thread only unloads."""
        thread = self.loaded.get(thread_id)
        if thread is not None and thread.active_turn is not None:
            raise EngineError(f"thread {thread_id} has an active turn; interrupt it first")
        rec = self.store.get(thread_id)
        if rec is None and thread is None:
            raise EngineError(f"no rollout found for thread id {thread_id}")
        if thread is not None:
            await self.unload(thread_id, force=True)
        if rec is not None:
            self.store.delete(thread_id)
        self.read_states.forget(thread_id)
        await self.outbox.broadcast("thread/deleted", {"threadId": thread_id})

    async def unarchive(self, thread_id: str) -> ThreadRecord:
        rec = self._record(thread_id)
        if rec.archived:
            self.store.unarchive(thread_id)
        await self.outbox.broadcast("thread/unarchived", {"threadId": thread_id})
        return self._record(thread_id)

    def set_name(self, thread_id: str, name: str | None) -> None:
        thread = self.loaded.get(thread_id)
        rec = self.store.get(thread_id)
        if thread is None and rec is None:
            raise EngineError(f"thread not found: {thread_id}")
        if thread is not None:
            thread.name = name
            # Before its first user message a thread has no rollout yet: the name waits in
            # memory and goes into the rollout's session_meta (``_materialize``).
            if thread.materialized:
                event = {"type": "thread_name_updated", "thread_name": name}
                self.recorder(thread)("event_msg", event)
                self._index(thread)
        elif rec is not None:
            writer = RolloutWriter(rec.path)
            writer.append("event_msg", {"type": "thread_name_updated", "thread_name": name})
            writer.close()
        if rec is not None:
            self.store.set_name(thread_id, name)

    async def shutdown(self, timeout: float = 5.0) -> None:
        """Interrupt running turns (each records its end), then close the rollouts."""
        tasks = list(self._turn_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        if self._retry_handle is not None:
            self._retry_handle.cancel()
            self._retry_handle = None
        if self._unsaved:
            self._retry_writes()  # a last try; what still fails is logged by the writer
            if self._retry_handle is not None:
                self._retry_handle.cancel()
                self._retry_handle = None
        if self.mcp is not None:
            await self.mcp.close()
        for thread in self.loaded.values():
            if thread.writer is not None:
                try:
                    thread.writer.flush()
                except OSError:
                    log.warning("could not fsync the rollout of thread %s", thread.id)
                thread.writer.close()


class _FailingClient:
    """Stands in when a provider's client cannot be built: the turn fails with the reason."""

    def __init__(self, provider: str) -> None:
        self.provider = provider

    async def stream(self, req: Any) -> Any:
        raise ProviderError(
            f"model provider `{self.provider}` is not available",
            retryable=False,
            codex_error_info="badRequest",
        )
        yield  # pragma: no cover - makes this an async generator

    async def aclose(self) -> None:
        return None


def _unanswered_calls(items: list[dict[str, Any]]) -> list[ToolCall]:
    """The tool calls at the end of a model history that have no output yet, in order."""
    answered = {
        item.get("call_id")
        for item in items
        if item.get("type") in ("function_call_output", "custom_tool_call_output")
    }
    calls: list[ToolCall] = []
    for item in items:
        kind = item.get("type")
        call_id = item.get("call_id")
        if kind not in ("function_call", "custom_tool_call") or call_id in answered:
            continue
        if not isinstance(call_id, str) or not isinstance(item.get("name"), str):
            continue
        custom = kind == "custom_tool_call"
        arguments = item.get("input" if custom else "arguments")
        calls.append(
            ToolCall(
                call_id,
                item["name"],
                arguments if isinstance(arguments, str) else "",
                "custom" if custom else "function",
                item,
            )
        )
    return calls


def _turns(lines: list[dict[str, Any]], *, live_turn_id: str | None = None) -> list[Turn]:
    """The turns a rollout records (``store.history`` rebuilds them as the schema's ``Turn``)."""
    return cast("list[Turn]", history.rebuild_turns(lines, live_turn_id=live_turn_id))


def _settings_from(lines: list[dict[str, Any]], meta: dict[str, Any]) -> ThreadSettings:
    """The settings a stored thread last ran with: the last turn_context, else its meta."""
    context: dict[str, Any] = {}
    for line in lines:
        if line.get("type") == "turn_context" and isinstance(line.get("payload"), dict):
            context = line["payload"]
    return ThreadSettings(
        model=context.get("model") or meta.get("model") or "",
        provider=context.get("model_provider") or meta.get("model_provider") or "",
        cwd=context.get("cwd") or meta.get("cwd") or str(Path.cwd()),
        approval_policy=context.get("approval_policy") or meta.get("approval_policy") or "never",
        sandbox_policy=context.get("sandbox_policy")
        or meta.get("sandbox_policy")
        or {"type": "readOnly", "networkAccess": False},
        effort=context.get("effort"),
        summary=context.get("summary"),
    )
