"""``thread/shellCommand``: the user's ``!cmd``, run in its thread as a turn of its own.

Owns the turn's body: a ``commandExecution`` item with ``source: "userShell"`` (started,
``item/commandExecution/outputDelta`` as output arrives, completed with the exit code and
the aggregated output), recorded in the rollout like the agent's commands, and a user-role
``<user_shell_command>`` message in the model history so the model sees what the user ran
next turn (Codex's record of it). The command runs through the thread's shell
(``shell.shell_argv``) in the thread's cwd, **unconfined** (the schema: "runs unsandboxed
with full access"), on the ``command/exec`` machinery (:class:`~appserver.host.process.ExecProcess`:
own process group, killed when the turn is interrupted or the server stops) with the agent's
scrubbed environment. Timeout: ``timeoutMs``, default one hour; 0 times out at once.

Layer: host; the engine's turn runner is reached through the small :class:`ShellTurn`
protocol the server's handler hands in (its ``emit`` typed per notification), and the item
notifications' params are built by ``engine.views``. Who may call this (only connections with full
access) is the handler's check. It must never confine or ask about the command: the user
typed it.
"""

from __future__ import annotations

import codecs
import os
import shlex
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from appserver.engine import views
from appserver.engine.tools import shell
from appserver.host.process import ExecProcess, ExecSpec

if TYPE_CHECKING:
    from appserver.engine.thread_state import ActiveTurn, LoadedThread
    from appserver.protocol.wire_types import Notify

__all__ = ["DEFAULT_TIMEOUT_MS", "ShellTurn", "history_record", "run_user_shell"]

DEFAULT_TIMEOUT_MS = 3_600_000
MAX_AGGREGATED_BYTES = 1024 * 1024


class ShellTurn(Protocol):
    """What the body needs of the engine's turn runner."""

    @property
    def emit(self) -> Notify: ...

    def record(self, kind: str, payload: dict[str, Any]) -> None: ...

    def record_item(self, item: dict[str, Any]) -> None: ...

    async def run_body(self, body: Callable[[], Awaitable[None]]) -> None: ...


def history_record(command: str, exit_code: int, duration_s: float, output: str) -> str:
    """The user-role message the model sees for a user shell command."""
    return (
        "<user_shell_command>\n<command>\n"
        f"{command}\n</command>\n<result>\n"
        f"Exit code: {exit_code}\nDuration: {duration_s:.4f} seconds\nOutput:\n{output}\n"
        "</result>\n</user_shell_command>"
    )


async def run_user_shell(
    turn: ShellTurn,
    *,
    thread: LoadedThread,
    active: ActiveTurn,
    item_id: str,
    command: str,
    env: dict[str, str],
    timeout_ms: int | None,
    confine: Callable[[list[str]], list[str]] | None = None,
) -> None:
    """The whole turn body, from after ``turn/started`` to before ``turn/completed``: the
    command runs in ``thread``'s cwd and lands in its history, as an item of ``active``."""
    await turn.run_body(
        lambda: _run(turn, thread, active, item_id, command, env, timeout_ms, confine)
    )


async def _run(
    turn: ShellTurn,
    thread: LoadedThread,
    active: ActiveTurn,
    item_id: str,
    command: str,
    env: dict[str, str],
    timeout_ms: int | None,
    confine: Callable[[list[str]], list[str]] | None,
) -> None:
    cwd = thread.settings.cwd
    argv = shell.shell_argv(command)
    # What runs: the command itself, or (``confine``) wrapped in the thread's sandbox; the
    # item shows the command as typed either way.
    run_argv = argv if confine is None else confine(argv)
    item: dict[str, Any] = {
        "type": "commandExecution",
        "id": item_id,
        "command": shlex.join(argv),
        "cwd": cwd,
        "processId": None,
        "source": "userShell",
        "status": "inProgress",
        "commandActions": shell.command_actions(command),
        "aggregatedOutput": None,
        "exitCode": None,
        "durationMs": None,
    }
    await turn.emit("item/started", views.item_started(thread, active, dict(item)))
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    parts: list[str] = []
    taken = 0

    async def on_output(stream: str, data: bytes, cap_reached: bool) -> None:
        nonlocal taken
        if taken >= MAX_AGGREGATED_BYTES:
            return
        data = data[: MAX_AGGREGATED_BYTES - taken]
        taken += len(data)
        text = decoder.decode(data)
        if text:
            parts.append(text)
            await turn.emit(
                "item/commandExecution/outputDelta",
                {"threadId": thread.id, "turnId": active.id, "itemId": item_id, "delta": text},
            )

    limit = DEFAULT_TIMEOUT_MS if timeout_ms is None else max(0, timeout_ms)
    spec = ExecSpec(
        argv=run_argv,
        cwd=cwd if os.path.isdir(cwd) else "/",
        env=env,
        output_cap=None,
        timeout_s=limit / 1000,
    )
    started = time.monotonic()
    status, code = "failed", -1
    try:
        result = await ExecProcess(spec, on_output).run()
        code = result.exit_code
        status = "completed" if code == 0 else "failed"
    finally:
        # Interrupted or not, the item ends and the model learns what ran.
        duration = time.monotonic() - started
        output = "".join(parts) + decoder.decode(b"", final=True)
        item.update(
            status=status,
            aggregatedOutput=output,
            exitCode=code,
            durationMs=int(duration * 1000),
        )
        message = {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": history_record(command, code, duration, output)}
            ],
        }
        thread.history.append(message)
        turn.record("response_item", message)
        turn.record_item(item)
        await turn.emit("item/completed", views.item_completed(thread, active, dict(item)))
