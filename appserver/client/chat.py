"""``appserver chat``: a terminal client for trying and debugging a server.

Owns the chat flow — connect, ``initialize``, ``thread/start``, then one turn per prompt line
(interactive) or one turn for ``-p`` — the rendering of our thread's notifications, the
answers to approval requests (asked at the prompt, or fixed by ``--approve``), Ctrl-C (first
interrupts the running turn, second quits) and the exit codes:

* 0 — interactive session ended (``/quit``, ``/exit`` or end of input), or the ``-p`` turn
  completed;
* 1 — the ``-p`` turn failed or was interrupted, or the server refused ``thread/start`` /
  ``turn/start`` (the error is one line on stderr);
* 2 — usage errors, and the connection could not be made or was lost;
* 130 — quit with Ctrl-C.

Output: the agent's text goes to stdout (streamed in interactive mode; with ``-p`` only the
turn's final agent message, earlier ones go to stderr as progress); reasoning summaries,
commands and their output, patches, approval prompts, notes and errors go to stderr. With
``--json`` stdout carries only the wire log, one ``{"dir": "c2s"|"s2c", "msg": {...}}`` per
line, and the agent's text moves to stderr. Everything printed is made terminal-safe by the
console (``safe_text``); commands, directories and paths are shown exactly (escaped when they
hold control or invisible characters). This module must never print a traceback for a
user-facing error, and never answer an approval it was not told how to answer except by
declining (``-p`` without a terminal and without ``--approve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import shlex
import signal
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appserver.client.console import BOLD, DIM, YELLOW, Console, LineReader, is_tty
from appserver.client.safe_text import exact, is_exact_safe
from appserver.client.session import ConnectionLost, RpcFailure, Session
from appserver.client.transport import (
    ConnectError,
    InProcessTransport,
    StartServer,
    StdioTransport,
    Transport,
    Warn,
    WebSocketTransport,
)

_SHELLS = frozenset({"bash", "sh", "zsh"})


def shown_command(command: object) -> str:
    """A command as the user reads it: the script of a ``bash -c SCRIPT`` (or ``-lc``)
    invocation, as the Codex TUI shows it; anything else as sent."""
    text = str(command or "")
    try:
        words = shlex.split(text)
    except ValueError:
        return text
    if len(words) == 3 and os.path.basename(words[0]) in _SHELLS and words[1] in ("-c", "-lc"):
        return words[2]
    return text


APPROVAL_METHODS = ("item/commandExecution/requestApproval", "item/fileChange/requestApproval")
APPROVAL_CHOICES = "[a]ccept / accept for [s]ession / [d]ecline / [c]ancel"
ANSWERS = {
    "a": "accept",
    "accept": "accept",
    "s": "acceptForSession",
    "session": "acceptForSession",
    "acceptforsession": "acceptForSession",
    "d": "decline",
    "decline": "decline",
    "c": "cancel",
    "cancel": "cancel",
}
QUIT_COMMANDS = ("/quit", "/exit")
METHOD_NOT_FOUND = -32601

EXIT_OK = 0
EXIT_TURN_FAILED = 1
EXIT_CONNECTION = 2
EXIT_INTERRUPTED = 130


class UsageProblem(ValueError):
    """Options that do not fit together; the CLI reports it as a usage error (exit 2)."""


@dataclass
class ChatOptions:
    server_cmd: str | None = None
    ws_url: str | None = None
    token_file: Path | None = None
    home: Path | None = None
    overrides: list[str] = field(default_factory=list)
    prompt: str | None = None
    json_mode: bool = False
    approve: str | None = None  # "accept" | "decline"
    cwd: Path | None = None
    model: str | None = None
    approval_policy: str | None = None
    sandbox: str | None = None
    # Starts the in-process server (given by the top-level CLI; the client never imports the
    # server). None: only --server-cmd and --ws can connect.
    start_server: StartServer | None = None

    def check(self) -> None:
        if self.server_cmd is not None and self.ws_url is not None:
            raise UsageProblem("choose one of --server-cmd and --ws")
        if self.token_file is not None and self.ws_url is None:
            raise UsageProblem("--token-file goes with --ws")
        if self.ws_url is not None and not self.ws_url.startswith(("ws://", "wss://")):
            raise UsageProblem(f"--ws expects a ws:// or wss:// URL, not {self.ws_url!r}")
        remote = self.server_cmd is not None or self.ws_url is not None
        if remote and (self.home is not None or self.overrides):
            raise UsageProblem(
                "--home and -c configure the in-process server; give them to the server "
                "started by --server-cmd, or to the server behind --ws"
            )
        if self.prompt is not None and not self.prompt.strip():
            raise UsageProblem("-p needs a non-empty prompt")

    def thread_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.cwd is not None:
            params["cwd"] = str(self.cwd.expanduser().resolve())
        if self.model is not None:
            params["model"] = self.model
        if self.approval_policy is not None:
            params["approvalPolicy"] = self.approval_policy
        if self.sandbox is not None:
            params["sandbox"] = self.sandbox
        return params


@dataclass
class TurnOutcome:
    status: str  # "completed" | "failed" | "interrupted"
    error: str | None = None
    final_text: str | None = None


class Renderer:
    """Our thread's notifications, shown as they arrive."""

    def __init__(self, console: Console, *, stream_text: bool) -> None:
        self.console = console
        self.stream_text = stream_text
        self.items: dict[str, dict[str, Any]] = {}
        self.last_error: str | None = None
        self._streamed: dict[str, str] = {}
        self._reasoning_open: str | None = None
        self._held: str | None = None  # -p: an agent message not shown yet
        self._last_text: str | None = None  # the turn's latest agent message

    def begin_turn(self) -> None:
        self.items.clear()
        self._streamed.clear()
        self.last_error = None
        self._held = None
        self._last_text = None

    def finish_turn(self) -> str | None:
        """End the turn's output; returns its final agent message (for ``-p``'s stdout)."""
        self._close_reasoning()
        self.console.end_line(self.console.out)
        self._held = None
        return self._last_text

    def _show_held(self) -> None:
        """-p: an agent message followed by more work is progress, shown on stderr."""
        if self._held:
            self.console.line(self.console.err, self._held, DIM)
        self._held = None

    def handle(self, method: str, params: dict[str, Any]) -> None:
        c = self.console
        if method == "configWarning":
            c.warn(str(params.get("summary", "")))
        elif method == "error":
            message = str((params.get("error") or {}).get("message", "error"))
            if params.get("willRetry"):
                c.note(f"retrying: {message}")
            else:
                self.last_error = message
        elif method == "item/started":
            self._item_started(params.get("item") or {})
        elif method == "item/completed":
            self._item_completed(params.get("item") or {})
        elif method == "item/agentMessage/delta":
            self._agent_delta(str(params.get("itemId", "")), str(params.get("delta", "")))
        elif method == "item/reasoning/summaryTextDelta":
            self._reasoning(str(params.get("itemId", "")), str(params.get("delta", "")))
        elif method == "item/reasoning/summaryPartAdded":
            if self._reasoning_open == params.get("itemId"):
                self._close_reasoning()
        elif method == "item/commandExecution/outputDelta":
            self._close_reasoning()
            c.write(c.err, str(params.get("delta", "")), DIM)
        elif method == "turn/plan/updated":
            c.note("plan:")
            for step in params.get("plan") or []:
                mark = {"completed": "x", "inProgress": ">"}.get(step.get("status"), " ")
                c.note(f"  [{mark}] {step.get('step', '')}")

    # -- items ------------------------------------------------------------------------------
    def _item_started(self, item: dict[str, Any]) -> None:
        c = self.console
        kind, item_id = item.get("type"), str(item.get("id", ""))
        self.items[item_id] = item
        if kind not in ("userMessage", "agentMessage"):
            self._show_held()
        if kind == "commandExecution":
            self._close_reasoning()
            c.line(c.err, f"$ {exact(shown_command(item.get('command')))}", BOLD)
        elif kind == "fileChange":
            self._close_reasoning()
            c.line(c.err, "patch:", BOLD)
            for change in item.get("changes") or []:
                what = (change.get("kind") or {}).get("type", "update")
                c.line(c.err, f"  {what} {exact(str(change.get('path', '')))}", BOLD)

    def _item_completed(self, item: dict[str, Any]) -> None:
        c = self.console
        kind, item_id = item.get("type"), str(item.get("id", ""))
        if kind == "agentMessage":
            self._agent_done(item_id, str(item.get("text") or ""))
        elif kind == "reasoning":
            self._close_reasoning()
        elif kind == "commandExecution":
            c.end_line(c.err)
            status = item.get("status")
            if status == "declined":
                c.note("(declined)")
            elif status == "failed":
                c.note(f"(failed, exit code {item.get('exitCode')})")
        elif kind == "fileChange":
            c.note(f"(patch {item.get('status', '')})")

    def _agent_delta(self, item_id: str, delta: str) -> None:
        if not self.stream_text:
            return
        self._close_reasoning()
        if item_id not in self._streamed:
            self.console.end_line(self.console.err)
        self._streamed[item_id] = self._streamed.get(item_id, "") + delta
        self.console.text(delta)

    def _agent_done(self, item_id: str, text: str) -> None:
        c = self.console
        self._last_text = text
        if not self.stream_text:
            self._show_held()
            self._held = text
            return
        self._close_reasoning()
        streamed = self._streamed.pop(item_id, "")
        if text.startswith(streamed):
            c.text(text[len(streamed) :])  # whatever the deltas did not carry
        c.end_line(c.out)

    def _reasoning(self, item_id: str, delta: str) -> None:
        c = self.console
        if self._reasoning_open != item_id:
            self._close_reasoning()
            c.fresh_line()
            c.write(c.err, "thinking: ", DIM)
            self._reasoning_open = item_id
        c.write(c.err, delta, DIM)

    def _close_reasoning(self) -> None:
        if self._reasoning_open is not None:
            self._reasoning_open = None
            self.console.end_line(self.console.err)


class Approver:
    """Answers approval requests: a fixed decision, or the user's at the prompt."""

    def __init__(
        self,
        console: Console,
        renderer: Renderer,
        reader: LineReader,
        *,
        fixed: str | None,
        fixed_why: str = "--approve",
        echo_answers: bool,
    ) -> None:
        self.console = console
        self.renderer = renderer
        self.reader = reader
        self.fixed = fixed
        self.fixed_why = fixed_why
        self.echo_answers = echo_answers
        self._one_at_a_time = asyncio.Lock()

    def describe(self, method: str, params: dict[str, Any]) -> list[str]:
        """The prompt's lines. What is being approved (command, directory, paths) is shown
        exactly (``safe_text.exact``): on one line, anything invisible or ambiguous escaped,
        with a note saying so."""
        reason = params.get("reason")
        values: list[str]
        if method == "item/commandExecution/requestApproval":
            command, cwd = shown_command(params.get("command")), params.get("cwd")
            values = [command]
            lines = [f"approve running: {exact(command)}"]
            if cwd:
                values.append(str(cwd))
                lines.append(f"  in {exact(str(cwd))}")
        else:
            item = self.renderer.items.get(str(params.get("itemId", ""))) or {}
            values = [str(ch.get("path", "")) for ch in item.get("changes") or []]
            paths = ", ".join(exact(p) for p in values)
            lines = ["approve the patch" + (f" to {paths}" if paths else "")]
        if not all(is_exact_safe(v) for v in values):
            lines.append(
                "  note: shown with escapes (\\n, \\r, \\x1b, \\u202e, … and \\\\ for a "
                "backslash): it holds control or invisible characters"
            )
        if reason:  # one line too: a line break in it could fake a line of the prompt
            lines.append(f"  reason: {exact(str(reason))}")
        return lines

    async def decide(self, method: str, params: dict[str, Any]) -> str | None:
        if method not in APPROVAL_METHODS:
            return None
        c = self.console
        async with self._one_at_a_time:
            lines = self.describe(method, params)
            if self.fixed is not None:
                c.note(f"{lines[0]} → {self.fixed} ({self.fixed_why})")
                return self.fixed
            for text in lines:
                c.line(c.err, text, BOLD, YELLOW)
            while True:
                c.write(c.err, f"{APPROVAL_CHOICES}? ", BOLD)
                answer = await self.reader.readline()
                if answer is None:
                    c.end_line(c.err)
                    c.note("end of input: cancel")
                    return "cancel"
                if self.echo_answers:
                    c.write(c.err, answer + "\n")
                else:
                    c.mark_line_start(c.err)  # the terminal echoed the newline
                decision = ANSWERS.get(answer.strip().lower())
                if decision is not None:
                    c.note(f"→ {decision}")
                    return decision
                c.warn("answer a, s, d or c")


class Chat:
    def __init__(self, session: Session, console: Console, opts: ChatOptions) -> None:
        self.session = session
        self.console = console
        self.opts = opts
        self.stdin_tty = is_tty(sys.stdin)
        self.reader = LineReader(0)
        interactive = opts.prompt is None
        self.renderer = Renderer(console, stream_text=interactive)
        fixed, why = opts.approve, "--approve"
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
            result = await self.session.request("thread/start", self.opts.thread_params())
        except RpcFailure as exc:
            self._show_queued()
            self.console.error(f"thread/start failed: {exc.message}")
            return EXIT_TURN_FAILED
        thread = result.get("thread") or {}
        self.thread_id = str(thread.get("id"))
        self._show_queued()
        if self.opts.prompt is not None:
            return await self.one_shot(self.opts.prompt)
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


async def open_transport(opts: ChatOptions, warn: Warn) -> Transport:
    if opts.server_cmd is not None:
        return await StdioTransport.spawn(opts.server_cmd, warn)
    if opts.ws_url is not None:
        token = None
        if opts.token_file is not None:
            try:
                token = opts.token_file.expanduser().read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConnectError(
                    f"cannot read --token-file {opts.token_file}: {exc.strerror or exc}"
                ) from None
            if not token:
                raise ConnectError(f"--token-file {opts.token_file} is empty")
        return await WebSocketTransport.connect(opts.ws_url, token, warn)
    if opts.start_server is None:
        raise ConnectError("no in-process server here: use --server-cmd or --ws")
    return await InProcessTransport.start(opts.start_server, opts.home, opts.overrides, warn)


async def _main(opts: ChatOptions) -> int:
    console = Console(json_mode=opts.json_mode)
    loop = asyncio.get_running_loop()
    chat: Chat | None = None
    main_task = asyncio.current_task()

    def on_sigint() -> None:
        if chat is not None:
            chat.on_sigint()
        elif main_task is not None:
            main_task.cancel()

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGINT, on_sigint)
    session: Session | None = None
    try:
        try:
            transport = await open_transport(opts, console.warn)
        except ConnectError as exc:
            console.error(str(exc))
            return EXIT_CONNECTION
        session = Session(transport, wire_log=console.wire if opts.json_mode else None)
        chat = Chat(session, console, opts)
        chat.main_task = main_task
        return await chat.run()
    except ConnectionLost as exc:
        console.error(str(exc))
        return EXIT_CONNECTION
    except asyncio.CancelledError:
        console.note("quit")
        return EXIT_INTERRUPTED
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGINT)
        if session is not None:
            await session.close()


def run_chat(opts: ChatOptions) -> int:
    """Run the whole client; returns the process exit code."""
    try:
        return asyncio.run(_main(opts))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # stdout closed early (e.g. piped into `head`)
        # Point stdout at /dev/null so the interpreter's final flush does not fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_TURN_FAILED
