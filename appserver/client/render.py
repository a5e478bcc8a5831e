"""How ``appserver chat`` shows our thread's notifications on the terminal.

Owns ``Renderer`` (agent text streamed to stdout or held for ``-p``, reasoning summaries,
commands and their output, patches, plans, errors and retries, each on the stream the chat
module docstring gives) and ``shown_command`` (a command as the user reads it). Everything
goes through the ``Console``, which makes it terminal-safe; commands and paths are shown
exactly (``safe_text.exact``).
Must never: send anything to the server, answer requests, or read input.
"""

from __future__ import annotations

import os
import shlex
from typing import Any

from appserver.client.console import BOLD, DIM, Console
from appserver.client.safe_text import exact

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
