"""Answering the server's approval requests in ``appserver chat``.

Owns ``Approver``: which requests are approvals, how one is described (what is being
approved shown exactly, with a note when it holds control or invisible characters), and the
decision: fixed (``--approve``, or decline for ``-p`` without a terminal) or asked at the
prompt, one request at a time; end of input cancels.
Must never: answer anything but an approval (other server requests get ``None``: the caller
rejects them), or accept what it was not told to accept.
"""

from __future__ import annotations

import asyncio
from typing import Any

from appserver.client.console import BOLD, YELLOW, Console, LineReader
from appserver.client.render import Renderer, shown_command
from appserver.client.safe_text import exact, is_exact_safe

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
