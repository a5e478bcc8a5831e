"""Context compaction (``thread/compact/start``): one turn that swaps the model history for a
handoff summary.

Owns the compaction turn's body (run by ``TurnRunner.run_body``, so retries, failure and
interruption end the turn exactly as in a regular turn), the wording sent to the model (the
instruction asking for the summary, the prefix that introduces it afterwards), and the
replacement history: the newest user messages, bounded, plus one user message holding the
summary. Wire order: ``item/started`` (contextCompaction), the model call, ``item/completed``,
the deprecated ``thread/compacted``, then ``turn/completed``; the rollout gets a ``compacted``
line whose ``replacement_history`` is what ``history.rebuild_history`` loads after a restart.

It must never stream the model's summary to clients as an agent message, run the tools the
model may ask for, or change the thread's history unless the model delivered a summary.
"""

from __future__ import annotations

import asyncio
from typing import Any

from appserver.engine import views
from appserver.engine.ids import uuid7
from appserver.engine.turn_runner import TurnFailed, TurnRunner

COMPACTION_INSTRUCTION = (
    "Stop working on the task for a moment: the conversation so far is about to be replaced by "
    "a summary that you write now. Another model will pick the work up from that summary alone, "
    "so write a concise handoff note covering:\n"
    "- the goal, and any constraints or preferences the user stated;\n"
    "- what has been done so far and what it showed (files changed, commands run, findings);\n"
    "- decisions taken and why;\n"
    "- open questions or problems;\n"
    "- the next steps, in order.\n"
    "Be specific (paths, names, values) and leave out pleasantries. Reply with the note only "
    "and do not call any tools."
)

SUMMARY_PREFIX = (
    "Another language model worked on this task before you and wrote the handoff note below "
    "about what it did and learned. The earlier conversation is no longer available; the user "
    "messages above are the most recent ones it had. Continue the work from this note, and "
    "check anything it is unsure about rather than assuming."
)

# How much of the user's own words survives a compaction (newest first), in characters.
USER_MESSAGES_MAX_CHARS = 20_000
_TRUNCATED = "\n[... truncated]"


def _user_message(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _user_text(item: dict[str, Any]) -> str | None:
    """The text of a user message in the model history, or None for any other item."""
    if item.get("type") != "message" or item.get("role") != "user":
        return None
    content = item.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts = [
        c["text"]
        for c in content
        if isinstance(c, dict) and c.get("type") == "input_text" and isinstance(c.get("text"), str)
    ]
    return "\n".join(parts)


def replacement_history(
    history: list[dict[str, Any]], summary: str, *, max_chars: int = USER_MESSAGES_MAX_CHARS
) -> list[dict[str, Any]]:
    """The model history after a compaction: recent user messages, then the summary.

    User messages are kept newest first while they fit in ``max_chars`` (the first one that
    does not fit is cut to the room left), then put back in order. Images are dropped (the
    summary stands for them) and so are earlier summaries, which the new one supersedes.
    """
    kept: list[str] = []
    room = max_chars
    for item in reversed(history):
        text = _user_text(item)
        if not text or text.startswith(SUMMARY_PREFIX):
            continue
        if len(text) > room:
            if room > len(_TRUNCATED):
                kept.append(text[: room - len(_TRUNCATED)] + _TRUNCATED)
            break
        kept.append(text)
        room -= len(text)
    messages = [_user_message(text) for text in reversed(kept)]
    return [*messages, _user_message(f"{SUMMARY_PREFIX}\n\n{summary}")]


async def run(runner: TurnRunner) -> None:
    """The compaction turn, from after ``turn/started`` to ``turn/completed``."""
    await runner.run_body(lambda: _compact(runner))


async def _compact(r: TurnRunner) -> None:
    item = {"type": "contextCompaction", "id": uuid7()}
    await r.emit("item/started", views.item_started(r.thread, r.turn, item))
    prompt = [*r.thread.history, _user_message(COMPACTION_INSTRUCTION)]
    try:
        summary = await r.with_retries(lambda: _summarize(r, prompt))
    except Exception:
        # Every started item completes (spec §4.5.2) unless the turn is interrupted; the failed
        # turn and the missing thread/compacted say that nothing changed.
        await _complete(r, item)
        raise
    # The compaction takes effect here, in one synchronous step (history, then the rollout).
    replacement = replacement_history(r.thread.history, summary)
    r.thread.history = replacement
    r.record("compacted", {"message": summary, "replacement_history": replacement})
    announce = asyncio.ensure_future(_announce(r, item))
    try:
        await asyncio.shield(announce)
    except asyncio.CancelledError:
        # An interrupt that lands now is too late: the history is already replaced, so the
        # turn finishes announcing it and completes rather than reporting "interrupted".
        await announce
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()


async def _complete(r: TurnRunner, item: dict[str, Any]) -> None:
    r.record_item(item)
    await r.emit(
        "item/completed",
        views.item_completed(r.thread, r.turn, item),
    )


async def _announce(r: TurnRunner, item: dict[str, Any]) -> None:
    await _complete(r, item)
    await r.emit("thread/compacted", {"threadId": r.thread.id, "turnId": r.turn.id})


async def _summarize(r: TurnRunner, prompt: list[dict[str, Any]]) -> str:
    """One model call; its last message is the summary. Nothing of it reaches the client
    but the token usage: reasoning and tool calls are ignored."""
    # The regular request (same instructions and tools, the history as its prefix): the
    # provider's prompt cache still applies, and past tool calls stay valid input.
    request = r.model_request(prompt)
    summary = (await r.last_message(request, finished_only=True)).strip()
    if not summary:
        raise TurnFailed(
            {
                "message": "the model returned no summary; the thread's history is unchanged",
                "codexErrorInfo": "other",
                "additionalDetails": None,
            }
        )
    return summary
