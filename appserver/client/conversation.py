"""The conversation of ``appserver chat`` over an open session: one thread, turn by turn.

Owns ``Chat``: the handshake and ``thread/start``, the input loop (interactive prompt lines,
``/quit`` and ``/exit``; or the one ``-p`` turn), running a turn until its ``turn/completed``,
dispatching what the server sends meanwhile (our thread's notifications to the ``Renderer``,
approval requests to the ``Approver`` in their own tasks, withdrawn requests cancelled,
other threads' traffic ignored), Ctrl-C (first interrupts the running turn, second quits),
and the exit code each ending gives (``exit_codes``).
Must never: print a traceback for a user-facing error, or leave an answering task running
after its turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from appserver.client.approvals import Approver
from appserver.client.console import BOLD, Console, LineReader, is_tty
from appserver.client.exit_codes import EXIT_CONNECTION, EXIT_OK, EXIT_TURN_FAILED
from appserver.client.render import Renderer
from appserver.client.session import ConnectionLost, RpcFailure, Session

QUIT_COMMANDS = ("/quit", "/exit")
METHOD_NOT_FOUND = -32601


@dataclass
class TurnOutcome:
    status: str  # "completed" | "failed" | "interrupted"
    error: str | None = None
    final_text: str | None = None


class Chat:
    """One chat: ``prompt`` None is interactive, else the one ``-p`` turn; ``approve`` is
    ``--approve``'s fixed decision (None: ask); ``thread_params()`` gives the params of
    ``thread/start``."""

    def __init__(
        self,
        session: Session,
        console: Console,
        *,
        prompt: str | None,
        approve: str | None,
        thread_params: Callable[[], dict[str, Any]],
    ) -> None:
        self.session = session
        self.console = console
        self.prompt = prompt
        self.thread_params = thread_params
        self.stdin_tty = is_tty(sys.stdin)
        self.reader = LineReader(0)
        interactive = prompt is None
        self.renderer = Renderer(console, stream_text=interactive)
        fixed, why = approve, "--approve"
        if fixed is None and not (interactive or self.stdin_tty):
            fixed, why = "decline", "-p without a terminal declines unless --approve accept"
        self.approver = Approver(
            console,
            self.renderer,
            self.reader,
            fixed=fixed,
            fixed_why=why,
            echo_answers=not self.stdin_tty,
        )
        self.thread_id: str | None = None
        self.turn_id: str | None = None
        self.interrupting = False
        self.main_task: asyncio.Task[Any] | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._answering: dict[Any, asyncio.Task[None]] = {}

    # -- setup ------------------------------------------------------------------------------
    async def run(self) -> int:
        try:
            await self.session.initialize()
        except RpcFailure as exc:
            self.console.error(f"the server refused initialize: {exc.message}")
            return EXIT_CONNECTION
        try:
            result = await self.session.request("thread/start", self.thread_params())
        except RpcFailure as exc:
            self._show_queued()
            self.console.error(f"thread/start failed: {exc.message}")
            return EXIT_TURN_FAILED
        thread = result.get("thread") or {}
        self.thread_id = str(thread.get("id"))
        self._show_queued()
        if self.prompt is not None:
            return await self.one_shot(self.prompt)
        provider, model = thread.get("modelProvider"), thread.get("model")
        self.console.note(
            f"thread {self.thread_id} · {provider}/{model} · {self.session.transport.description}"
        )
        self.console.note("type a prompt; /quit or end of input (Ctrl-D) exits")
        return await self.interactive()

    async def one_shot(self, prompt: str) -> int:
        outcome = await self.run_turn(prompt)
        if outcome.status == "completed":
            if outcome.final_text:
                self.console.line(self.console.out, outcome.final_text)
            return EXIT_OK
        self.console.error(self._failure_text(outcome))
        return EXIT_TURN_FAILED

    async def interactive(self) -> int:
        c = self.console
        while True:
            self._show_queued()
            if self.stdin_tty:
                c.fresh_line()
                c.write(c.err, "> ", BOLD)
            line = await self.reader.readline()
            if self.stdin_tty:
                c.mark_line_start(c.err)
            if line is None:
                return EXIT_OK
            text = line.strip()
            if not text:
                continue
            if not self.stdin_tty:
                c.line(c.err, f"> {text}", BOLD)
            if text in QUIT_COMMANDS:
                return EXIT_OK
            outcome = await self.run_turn(text)
            if outcome.status != "completed":
                c.error(self._failure_text(outcome))

    @staticmethod
    def _failure_text(outcome: TurnOutcome) -> str:
        if outcome.status == "interrupted":
            return "turn interrupted"
        return outcome.error or f"turn {outcome.status}"

    # -- turns ------------------------------------------------------------------------------
    async def run_turn(self, text: str) -> TurnOutcome:
        self.renderer.begin_turn()
        self.interrupting = False
        start = {"threadId": self.thread_id, "input": [{"type": "text", "text": text}]}
        try:
            result = await self.session.request("turn/start", start)
        except RpcFailure as exc:
            return TurnOutcome("failed", f"turn/start failed: {exc.message}")
        turn_id = str((result.get("turn") or {}).get("id"))
        self.turn_id = turn_id
        try:
            while True:
                msg = await self.session.next_message()
                params = msg.get("params") or {}
                turn = params.get("turn") or {}
                if (
                    msg.get("method") == "turn/completed"
                    and "id" not in msg
                    and params.get("threadId") == self.thread_id
                    and turn.get("id") == turn_id
                ):
                    error = (turn.get("error") or {}).get("message") or self.renderer.last_error
                    final = self.renderer.finish_turn()
                    return TurnOutcome(str(turn.get("status")), error, final)
                self._dispatch(msg)
        finally:
            self.turn_id = None
            await self._stop_answering()

    def _show_queued(self) -> None:
        for msg in self.session.queued_messages():
            self._dispatch(msg)

    def _dispatch(self, msg: dict[str, Any]) -> None:
        method = str(msg.get("method", ""))
        params = msg.get("params") or {}
        if "id" in msg:
            rid = msg["id"]
            task = asyncio.create_task(self._answer(rid, method, params))
            self._answering[rid] = task
            task.add_done_callback(functools.partial(self._answered, rid))
            return
        if method == "serverRequest/resolved":
            asking = self._answering.pop(params.get("requestId"), None)
            if asking is not None and not asking.done():
                asking.cancel()
                self.console.note("(the server withdrew the approval request)")
            return
        thread_id = params.get("threadId")
        if thread_id is not None and thread_id != self.thread_id:
            return  # another thread on a shared server
        self.renderer.handle(method, params)

    def _answered(self, rid: Any, task: asyncio.Task[None]) -> None:
        if self._answering.get(rid) is task:
            del self._answering[rid]

    async def _answer(self, rid: Any, method: str, params: dict[str, Any]) -> None:
        decision = await self.approver.decide(method, params)
        with contextlib.suppress(ConnectionLost):
            if decision is None:
                await self.session.reject(
                    rid, METHOD_NOT_FOUND, f"appserver chat does not handle {method}"
                )
            else:
                await self.session.respond(rid, {"decision": decision})

    async def _stop_answering(self) -> None:
        tasks = list(self._answering.values())
        self._answering.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- Ctrl-C -----------------------------------------------------------------------------
    def on_sigint(self) -> None:
        if self.turn_id is not None and not self.interrupting:
            self.interrupting = True
            self.console.note("interrupting the turn (Ctrl-C again quits)")
            params = {"threadId": self.thread_id, "turnId": self.turn_id}
            self._spawn(self.session.request("turn/interrupt", params))
        elif self.main_task is not None:
            self.main_task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        async def quietly() -> None:
            with contextlib.suppress(RpcFailure, ConnectionLost):
                await coro

        task = asyncio.create_task(quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
