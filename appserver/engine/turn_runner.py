"""One turn, from ``turn/started`` to ``turn/completed``.

Owns the turn loop (spec §4.4-4.5): record the user's input, call the model with the full
history, stream its message and reasoning deltas as item notifications, run tool calls (with
approvals) and call the model again until a response has no tool calls; retry failed model
round-trips visibly (``error`` with ``willRetry``), and finish exactly once with
``turn/completed`` — completed, interrupted or failed. Other kinds of turn (a compaction, see
``compaction.py``) run their own body through ``run_body`` and reuse the request building,
the retries and the usage reporting here. It must never let an exception escape the turn
task: every path ends in ``turn/completed``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from appserver.engine import client_questions, client_tools, goals, tool_calls, views
from appserver.engine.ids import uuid7
from appserver.engine.mcp.turn import ThreadMcp
from appserver.engine.ports import Outbox, thread_emitter
from appserver.engine.providers import events as ev
from appserver.engine.providers.events import ModelClient, ModelRequest, ProviderError
from appserver.engine.skills.turn import TurnSkills
from appserver.engine.thread_state import ActiveTurn, LoadedThread, now_ms, now_s
from appserver.engine.tool_specs import tools_for
from appserver.engine.tools.command_policy import CommandPolicy
from appserver.store import history

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import TurnIds
    from appserver.protocol.wire_types import Notify

log = logging.getLogger("appserver.engine")

T = TypeVar("T")

BASE_INSTRUCTIONS = (
    "You are a coding agent running in the user's workspace. Use shell_command to inspect and "
    "run things, apply_patch to edit files, and update_plan for multi-step work. Be concise."
)


@dataclass(frozen=True)
class RetryBudget:
    """How often a failed model round-trip is tried again (the provider's config)."""

    request: int = 0  # HTTP errors and connection failures (request_max_retries)
    stream: int = 0  # streams that break off before completing (stream_max_retries)

    def allows(self, exc: ProviderError, attempts: dict[str, int]) -> bool:
        kind = "stream" if _is_stream_failure(exc) else "request"
        attempts[kind] = attempts.get(kind, 0) + 1
        return exc.retryable and attempts[kind] <= getattr(self, kind)


def _is_stream_failure(exc: ProviderError) -> bool:
    info = exc.codex_error_info
    return isinstance(info, dict) and "responseStreamDisconnected" in info


class TurnFailed(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


def turn_error(exc: ProviderError) -> dict[str, Any]:
    return {"message": str(exc), "codexErrorInfo": exc.codex_error_info, "additionalDetails": None}


def backoff_s(attempt: int) -> float:
    return float(min(0.2 * 2 ** (attempt - 1), 5.0))


class TurnRunner:
    def __init__(
        self,
        thread: LoadedThread,
        turn: ActiveTurn,
        outbox: Outbox,
        client: ModelClient,
        *,
        retries: RetryBudget,
        originator: str,
        record: Callable[[str, dict[str, Any]], None],
        on_finished: Callable[[str], Awaitable[None]],
        commands: CommandPolicy | None = None,
        protected_paths: tuple[Path, ...] = (),
        context_window: int | None = None,
        skills: TurnSkills | None = None,
        mcp: ThreadMcp | None = None,
    ) -> None:
        self.mcp = mcp  # the thread's MCP tools (offered when their server is ready)
        self.commands = commands or CommandPolicy()
        self.protected_paths = protected_paths
        # The model's usable context window in tokens (``thread/tokenUsage/updated``).
        self.context_window = context_window
        self.skills = skills
        self.thread = thread
        self.turn = turn
        self.outbox = outbox
        self.client = client
        self.retries = retries
        self.originator = originator
        self._record = record
        self._on_finished = on_finished
        # Agent messages a broken model stream left open, resumed by the retry (_StreamState).
        self._carried: list[_Carried] = []
        # A notification to the thread's subscribers, its params typed by method.
        self.emit: Notify = thread_emitter(outbox, thread.id)

    # -- TurnOps ----------------------------------------------------------------------------

    def record(self, kind: str, payload: dict[str, Any]) -> None:
        self._record(kind, payload)

    def record_item(self, item: dict[str, Any]) -> None:
        event = {"type": "item_completed", "turn_id": self.turn.id, "item": item}
        self.record("event_msg", {**event, "completed_at_ms": now_ms()})

    async def ask(self, method: str, params: Mapping[str, Any]) -> Any:
        thread = self.thread
        thread.waiting_flags = ["waitingOnApproval"]
        await self._status_changed()
        # On record, so a restart finds the turn waiting here and can ask again (``resume``).
        ids = {"turn_id": self.turn.id, "method": method, "item_id": params.get("itemId")}
        self.record("event_msg", {"type": "approval_requested", **ids})
        try:
            pending = await self.outbox.request_thread(thread.id, method, params)
            answer = await pending
        except asyncio.CancelledError:
            raise
        except Exception:
            # An error answer (or a turn-transition cancel) counts as a decline.
            answer = {"decision": "decline"}
        finally:
            thread.waiting_flags = []
            if thread.active_turn is self.turn:
                await self._status_changed()
        self.record("event_msg", {"type": "approval_resolved", **ids})
        return answer

    async def _status_changed(self) -> None:
        await self.outbox.broadcast(
            "thread/status/changed", views.status_changed(self.thread.id, self.thread)
        )

    # -- the turn ---------------------------------------------------------------------------
    async def run(
        self, user_input: list[dict[str, Any]], context: list[dict[str, Any]] | None = None
    ) -> None:
        """A regular turn: ``context`` items the turn adds to the model history first (e.g.
        a collaboration-mode message), the user's input, then model rounds and tool calls."""
        await self.run_body(lambda: self._converse(user_input, context or []))

    async def run_context(self, context: list[dict[str, Any]]) -> None:
        """A turn without user input (a goal's continuation): ``context`` items go into the
        model history, then model rounds and tool calls as in a regular turn."""

        async def body() -> None:
            for item in context:
                self._history(item)
            await self._rounds()

        await self.run_body(body)

    async def resume(self, calls: list[ev.ToolCall]) -> None:
        """A turn a restart cut short while it waited on an approval: run the tool calls it
        had not finished (asking again), then go on as the turn would have."""
        await self.run_body(lambda: self._continue(calls))

    async def _continue(self, calls: list[ev.ToolCall]) -> None:
        for call in calls:
            output = await tool_calls.execute(self, call)
            kind = "custom_tool_call_output" if call.kind == "custom" else "function_call_output"
            self._history({"type": kind, "call_id": call.call_id, "output": output})
        await self._rounds()

    async def _converse(
        self, user_input: list[dict[str, Any]], context: list[dict[str, Any]]
    ) -> None:
        for item in context:
            self._history(item)
        await self._user_message(user_input)
        await self._inject_skills(user_input)
        await self._rounds()

    async def _rounds(self) -> None:
        while True:
            for extra in self._take_steer():
                await self._user_message(extra)
                await self._inject_skills(extra)
            calls = await self._model_round()
            for call in calls:
                output = await tool_calls.execute(self, call)
                custom = call.kind == "custom"
                kind = "custom_tool_call_output" if custom else "function_call_output"
                self._history({"type": kind, "call_id": call.call_id, "output": output})
            if not calls and not self.turn.steer_inputs:
                break

    async def run_body(self, body: Callable[[], Awaitable[None]]) -> None:
        """Run one turn's ``body`` and end the turn: how it ended decides the status."""
        status, error = "completed", None
        try:
            await body()
        except (asyncio.CancelledError, tool_calls.TurnCancelled):
            status = "interrupted"
        except TurnFailed as failed:
            status, error = "failed", failed.error
        except Exception:
            log.exception("turn %s failed unexpectedly", self.turn.id)
            status, error = (
                "failed",
                {
                    "message": "internal error while running the turn",
                    "codexErrorInfo": "other",
                    "additionalDetails": None,
                },
            )
        await self._finish(status, error)

    def _take_steer(self) -> list[list[dict[str, Any]]]:
        taken, self.turn.steer_inputs = self.turn.steer_inputs, []
        return taken

    def _history(self, item: dict[str, Any]) -> None:
        self.thread.history.append(item)
        self.record("response_item", item)

    async def _user_message(self, content: list[dict[str, Any]]) -> None:
        item = {"type": "userMessage", "id": uuid7(), "content": content}
        text = "\n".join(c["text"] for c in content if c.get("type") == "text")
        model_content: list[dict[str, Any]] = [{"type": "input_text", "text": text}] if text else []
        for c in content:
            if c.get("type") == "image":
                model_content.append({"type": "input_image", "image_url": c["url"]})
        self._history({"type": "message", "role": "user", "content": model_content})
        self.record("event_msg", {"type": "user_message", "message": text})
        self.record_item(item)
        if not self.thread.preview and text:
            self.thread.preview = text[:200]
        await self.emit("item/started", views.item_started(self.thread, self.turn, item))
        await self.emit("item/completed", views.item_completed(self.thread, self.turn, item))

    async def _inject_skills(self, content: list[dict[str, Any]]) -> None:
        """After the user's message: the whole text of each skill it names, one user-role
        ``<skill>`` message apiece (``skills.turn``)."""
        if self.skills is not None:
            for message in await self.skills.messages_for(content):
                self._history(message)

    async def _model_round(self) -> list[ev.ToolCall]:
        return await self.with_retries(self._stream_once)

    async def with_retries(self, round_trip: Callable[[], Awaitable[T]]) -> T:
        """``round_trip()`` (one model call), tried again within the provider's budget; a
        failure past it ends the turn as failed (``TurnFailed``)."""
        attempts: dict[str, int] = {}
        while True:
            try:
                return await round_trip()
            except ProviderError as exc:
                if self.retries.allows(exc, attempts):
                    attempt = sum(attempts.values())
                    await self.emit(
                        "error",
                        {
                            "error": views.wire_error(turn_error(exc)),
                            "willRetry": True,
                            "threadId": self.thread.id,
                            "turnId": self.turn.id,
                        },
                    )
                    # A server's Retry-After wins over our own backoff (bounded either way).
                    delay = exc.retry_after_s if exc.retry_after_s else backoff_s(attempt)
                    await asyncio.sleep(min(delay, 30.0))
                    continue
                if exc.retryable and exc.http_status is not None:
                    # An HTTP status worth retrying, and the budget is spent (as Codex says it).
                    exc = ProviderError(
                        f"exceeded retry limit, last status: {exc.http_status}: {exc}",
                        retryable=False,
                        http_status=exc.http_status,
                        codex_error_info=ev.too_many_failed_attempts(exc.http_status),
                    )
                raise TurnFailed(turn_error(exc)) from None

    def model_request(self, items: list[dict[str, Any]]) -> ModelRequest:
        """The request for one round-trip over ``items``, with the thread's settings."""
        settings = self.thread.settings
        instructions = settings.base_instructions or BASE_INSTRUCTIONS
        if settings.developer_instructions:
            instructions += "\n\n" + settings.developer_instructions
        if self.skills is not None and self.skills.section:
            instructions += "\n\n" + self.skills.section
        return ModelRequest(
            model=settings.model,
            instructions=instructions,
            input=items,
            tools=[
                *tools_for(settings.tools),
                *client_tools.model_specs(self.thread),
                *goals.model_specs(self.thread),
                *client_questions.model_specs(self.thread),
                *(self.mcp.specs() if self.mcp else []),
            ],
            reasoning_effort=settings.effort,
            reasoning_summary=settings.summary,
            headers={"originator": self.originator, "session_id": self.thread.id},
            prompt_cache_key=self.thread.id,
            output_schema=self.turn.output_schema,
        )

    async def _stream_once(self) -> list[ev.ToolCall]:
        request = self.model_request(list(self.thread.history))
        stream = _StreamState(self, self._carried)
        self._carried = []
        try:
            async with contextlib.aclosing(self.client.stream(request)) as events:
                async for event in events:
                    await stream.on_event(event)
        except ProviderError:
            # Open messages wait for the retry (if any) to resume them; _finish closes them
            # if none comes.
            self._carried = await stream.carry_open_items()
            raise
        await stream.close_carried()
        return stream.calls

    async def last_message(self, request: ModelRequest, *, finished_only: bool = False) -> str:
        """One model call whose only output is its last message's text (a compaction summary,
        a review): only its token usage reaches clients; reasoning and tool calls are
        ignored. Text streamed after the last finished message counts unless
        ``finished_only``. Retries are the caller's (``with_retries``)."""
        text, parts = "", []
        async with contextlib.aclosing(self.client.stream(request)) as events:
            async for event in events:
                if isinstance(event, ev.TextDelta):
                    parts.append(event.delta)
                elif isinstance(event, ev.MessageDone):
                    text = event.text or "".join(parts)
                    parts = []
                elif isinstance(event, ev.Completed):
                    await self.report_usage(event.usage)
        return text if finished_only else text or "".join(parts)

    async def report_usage(self, usage: ev.Usage | None) -> None:
        """A round-trip's token usage: added to the thread's total, recorded and sent."""
        if usage is None:
            return
        last = {
            "totalTokens": usage.total_tokens,
            "inputTokens": usage.input_tokens,
            "cachedInputTokens": usage.cached_input_tokens,
            "outputTokens": usage.output_tokens,
            "reasoningOutputTokens": usage.reasoning_output_tokens,
        }
        total = self.thread.token_total
        for key, value in last.items():
            total[key] = total.get(key, 0) + value
        window = self.context_window
        info = {"total": dict(total), "last": last, "modelContextWindow": window}
        self.record(
            "event_msg",
            {"type": "token_count", "info": history.token_count_info(total, last, window)},
        )
        ids = views.turn_ids(self.thread, self.turn)
        await self.emit("thread/tokenUsage/updated", {**ids, "tokenUsage": views.wire_usage(info)})

    async def _finish(self, status: str, error: dict[str, Any] | None) -> None:
        turn, thread = self.turn, self.thread
        try:
            carried, self._carried = self._carried, []
            await _StreamState(self, carried).close_carried()
        except Exception:
            log.exception("failed to close the open items of turn %s", turn.id)
        try:
            end = {
                "turn_id": turn.id,
                "completed_at": now_s(),
                "duration_ms": now_ms() - turn.started_ms,
            }
            if status == "completed":
                self.record(
                    "event_msg",
                    {"type": "task_complete", **end, "last_agent_message": turn.last_agent_message},
                )
            elif status == "interrupted":
                self.record("event_msg", {"type": "turn_aborted", **end, "reason": "interrupted"})
            else:
                self.record("event_msg", {"type": "turn_failed", **end, "error": error})
                await self.emit(
                    "error",
                    {
                        "error": views.wire_error(error),
                        "willRetry": False,
                        "threadId": thread.id,
                        "turnId": turn.id,
                    },
                )
        except Exception:
            log.exception("failed to record the end of turn %s", turn.id)
        await self.outbox.cancel_thread_requests(thread.id)
        client_questions.end_of_turn(turn)
        thread.active_turn = None
        thread.waiting_flags = []
        thread.system_error = status == "failed"
        await self._status_changed()
        turn.stopped.set()
        if turn.interrupt_requested:
            # The interrupt's response must reach the client before turn/completed.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(turn.may_complete.wait(), timeout=5)
        turn_wire = views.turn_view(turn, status, error)
        await self.emit("turn/completed", {"threadId": thread.id, "turn": turn_wire})
        await self._on_finished(status)


@dataclass
class _Carried:
    """An agent message a broken stream left open: its id on the wire, the text the client
    has, and what the retry has streamed for it so far."""

    wire_id: str
    shown: str
    received: str = ""


class _StreamState:
    """Items opened by one model round-trip, and the tool calls it asked for.

    A retried round-trip never duplicates text the client already has: the messages the
    broken attempt left open are carried into the retry, which resumes them in order. The
    retry's first messages map onto them (same item id on the wire); their deltas are held back
    while they repeat text already sent and only the rest is streamed. If the retry says
    something else, the carried message is completed with the text shown and the retry's text
    goes out as a new item. Either way what the client was shown and what is recorded agree."""

    def __init__(self, runner: TurnRunner, carried: list[_Carried] | None = None) -> None:
        self.r = runner
        self.calls: list[ev.ToolCall] = []
        self.open_messages: dict[str, list[str]] = {}
        self.open_reasoning: dict[str, dict[str, list[str]]] = {}
        self.carried = list(carried or [])
        self.resuming: dict[str, _Carried] = {}  # the model's item id → the carried message

    def _ids(self) -> TurnIds:
        return views.turn_ids(self.r.thread, self.r.turn)

    async def _start_message(self, item_id: str) -> None:
        if item_id in self.resuming:
            return
        if item_id not in self.open_messages and self.carried:
            self.resuming[item_id] = self.carried.pop(0)
            return
        if item_id not in self.open_messages:
            self.open_messages[item_id] = []
            item = {"type": "agentMessage", "id": item_id, "text": "", "phase": None}
            await self.r.emit(
                "item/started",
                views.item_started(self.r.thread, self.r.turn, item),
            )

    async def _start_reasoning(self, item_id: str) -> None:
        if item_id not in self.open_reasoning:
            self.open_reasoning[item_id] = {"summary": [], "content": []}
            item = {"type": "reasoning", "id": item_id, "summary": [], "content": []}
            await self.r.emit(
                "item/started",
                views.item_started(self.r.thread, self.r.turn, item),
            )

    async def on_event(self, e: ev.ModelEvent) -> None:
        r = self.r
        if isinstance(e, ev.TextDelta):
            # Once per streamed delta: no helper coroutine once the item is open, one dict.
            parts = self.open_messages.get(e.item_id)
            if parts is None:
                await self._start_message(e.item_id)
                resumed = self.resuming.get(e.item_id)
                if resumed is not None:
                    await self._resume_delta(resumed, e.delta)
                    return
                parts = self.open_messages[e.item_id]
            parts.append(e.delta)
            await r.emit(
                "item/agentMessage/delta", {**self._ids(), "itemId": e.item_id, "delta": e.delta}
            )
        elif isinstance(e, ev.MessageStarted):
            await self._start_message(e.item_id)
        elif isinstance(e, ev.MessageDone):
            await self._start_message(e.item_id)
            resumed = self.resuming.pop(e.item_id, None)
            if resumed is not None:
                text = e.text or resumed.received
                await self._diverge_unless(resumed, text)
                wire_id = resumed.wire_id
            else:
                parts = self.open_messages.pop(e.item_id)
                text = e.text if e.text or not parts else "".join(parts)
                wire_id = e.item_id
            item = {"type": "agentMessage", "id": wire_id, "text": text, "phase": None}
            await self._complete(item)
            r.turn.last_agent_item = item
            r._history(e.raw_item)
        elif isinstance(e, ev.ReasoningStarted):
            await self._start_reasoning(e.item_id)
        elif isinstance(e, ev.ReasoningSummaryPartAdded):
            await self._start_reasoning(e.item_id)
            await r.emit(
                "item/reasoning/summaryPartAdded",
                {**self._ids(), "itemId": e.item_id, "summaryIndex": e.summary_index},
            )
        elif isinstance(e, ev.ReasoningSummaryDelta):
            await self._start_reasoning(e.item_id)
            await r.emit(
                "item/reasoning/summaryTextDelta",
                {
                    **self._ids(),
                    "itemId": e.item_id,
                    "delta": e.delta,
                    "summaryIndex": e.summary_index,
                },
            )
        elif isinstance(e, ev.ReasoningContentDelta):
            await self._start_reasoning(e.item_id)
            await r.emit(
                "item/reasoning/textDelta",
                {
                    **self._ids(),
                    "itemId": e.item_id,
                    "delta": e.delta,
                    "contentIndex": e.content_index,
                },
            )
        elif isinstance(e, ev.ReasoningDone):
            await self._start_reasoning(e.item_id)
            self.open_reasoning.pop(e.item_id, None)
            await self._complete(
                {
                    "type": "reasoning",
                    "id": e.item_id,
                    "summary": list(e.summary),
                    "content": list(e.content),
                }
            )
            r._history(e.raw_item)
        elif isinstance(e, ev.ToolCall):
            self.calls.append(e)
            r._history(e.raw_item)
        elif isinstance(e, ev.Completed):
            await r.report_usage(e.usage)

    async def _complete(self, item: dict[str, Any]) -> None:
        self.r.record_item(item)
        await self.r.emit(
            "item/completed",
            views.item_completed(self.r.thread, self.r.turn, item),
        )

    async def _resume_delta(self, c: _Carried, delta: str) -> None:
        """A delta of a resumed message: only text beyond what the client has goes out."""
        c.received += delta
        if c.shown.startswith(c.received):
            return  # still repeating what was sent before the break
        await self._diverge_unless(c, c.received)
        extra = c.received[len(c.shown) :]
        c.shown = c.received
        await self.r.emit(
            "item/agentMessage/delta", {**self._ids(), "itemId": c.wire_id, "delta": extra}
        )

    async def _diverge_unless(self, c: _Carried, text: str) -> None:
        """When the retry's ``text`` does not continue what the client has, complete the
        carried message as shown and go on with a new item (whose text so far is unsent)."""
        if text.startswith(c.shown):
            return
        await self._complete(
            {"type": "agentMessage", "id": c.wire_id, "text": c.shown, "phase": None}
        )
        c.wire_id, c.shown = uuid7(), ""
        item = {"type": "agentMessage", "id": c.wire_id, "text": "", "phase": None}
        await self.r.emit("item/started", views.item_started(self.r.thread, self.r.turn, item))

    async def carry_open_items(self) -> list[_Carried]:
        """A failed round-trip: its open messages, to be resumed by a retry (or closed by the
        turn's end); its open reasoning is completed as it stands."""
        carried = [*self.resuming.values(), *self.carried]
        carried += [
            _Carried(item_id, "".join(parts)) for item_id, parts in self.open_messages.items()
        ]
        for c in carried:
            c.received = ""
        for item_id, acc in list(self.open_reasoning.items()):
            await self._complete({"type": "reasoning", "id": item_id, **acc})
        self.resuming.clear()
        self.carried = []
        self.open_messages.clear()
        self.open_reasoning.clear()
        return carried

    async def close_carried(self) -> None:
        """Complete carried messages no retry resumed, with the text the client has."""
        leftovers, self.carried = self.carried, []
        for c in leftovers:
            await self._complete(
                {"type": "agentMessage", "id": c.wire_id, "text": c.shown, "phase": None}
            )
