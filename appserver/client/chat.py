"""``appserver chat``: a terminal client for trying and debugging a server.

Owns the command's entry point: its options (``ChatOptions``, checked together:
``UsageProblem``), opening the connection they name (``--server-cmd``, ``--ws`` with an
optional token file, else an in-process server), Ctrl-C routing, and ``run_chat``'s exit
code (``exit_codes``). The rest lives beside it: ``conversation`` (the flow: connect,
``initialize``, ``thread/start``, then one turn per prompt line, or one turn for ``-p``),
``render`` (our thread's notifications), ``approvals`` (answers to approval requests).

Output: the agent's text goes to stdout (streamed in interactive mode; with ``-p`` only the
turn's final agent message, earlier ones go to stderr as progress); reasoning summaries,
commands and their output, patches, approval prompts, notes and errors go to stderr. With
``--json`` stdout carries only the wire log, one ``{"dir": "c2s"|"s2c", "msg": {...}}`` per
line, and the agent's text moves to stderr. Everything printed is made terminal-safe by the
console (``safe_text``); commands, directories and paths are shown exactly (escaped when they
hold control or invisible characters). This command must never print a traceback for a
user-facing error, and never answer an approval it was not told how to answer except by
declining (``-p`` without a terminal and without ``--approve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appserver.client.console import Console
from appserver.client.conversation import Chat
from appserver.client.exit_codes import EXIT_CONNECTION, EXIT_INTERRUPTED, EXIT_TURN_FAILED
from appserver.client.session import ConnectionLost, Session
from appserver.client.transport import (
    ConnectError,
    InProcessTransport,
    StartServer,
    StdioTransport,
    Transport,
    Warn,
    WebSocketTransport,
)


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
        chat = Chat(
            session,
            console,
            prompt=opts.prompt,
            approve=opts.approve,
            thread_params=opts.thread_params,
        )
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
