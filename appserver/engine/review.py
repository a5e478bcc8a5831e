"""Review turns (``review/start``, inline delivery): one turn in which a reviewer model reads
the diff and answers with findings.

Owns the review turn's body (run by ``TurnRunner.run_body``, so retries, failure and
interruption end it as any turn), the review guidelines the reviewer gets, reading its JSON
answer (tolerantly: prose around the object, or no object at all) and rendering it as the
reference does: ``<overall explanation>\\n\\nReview comment:\\n\\n- <title> — <path>:<a>-<b>
\\n  <body>``. Wire order, as the reference's: ``userMessage`` (the hint), ``enteredReviewMode``,
the model call (nothing streamed), ``exitedReviewMode`` and an ``agentMessage`` both carrying the
rendered review, then ``turn/completed``. The reviewer sees only the review request, not the
thread's conversation; afterwards the thread's model history gets the review as a user action,
so the next turn can act on it. It must never run the tools the reviewer may ask for.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from appserver.engine import review_target, views
from appserver.engine.ids import uuid7
from appserver.engine.review_target import ReviewRequest
from appserver.engine.thread_state import ActiveTurn, LoadedThread
from appserver.engine.turn_runner import TurnRunner

if TYPE_CHECKING:
    from appserver.engine.manager import ThreadManager
    from appserver.protocol.wire_types import ReviewStartResponse, ThreadItem

FALLBACK_MESSAGE = "Reviewer failed to output a response."

REVIEW_GUIDELINES = """# Review guidelines

You are reviewing a proposed code change, as a careful senior engineer would. Flag only
problems the author would want to fix before merging: bugs, security issues, data loss,
broken error handling, race conditions, clear performance traps, and code that does not do
what it claims. Do not flag style preferences, speculative issues, or things outside the
change. Each finding names one problem, says why it is a problem and where, briefly and
without flattery. If there is nothing worth flagging, say so and return no findings.

## Output format

Answer with one JSON object and nothing else:

{
  "findings": [
    {
      "title": "<imperative, at most 80 characters>",
      "body": "<why this is a problem, in one short paragraph>",
      "confidence_score": <0.0 to 1.0>,
      "priority": <0 (must fix) to 3 (nice to have)>,
      "code_location": {
        "absolute_file_path": "<file path>",
        "line_range": {"start": <line>, "end": <line>}
      }
    }
  ],
  "overall_correctness": "patch is correct" | "patch is incorrect",
  "overall_explanation": "<one to three sentences on the change as a whole>",
  "overall_confidence_score": <0.0 to 1.0>
}
"""

_USER_ACTION = (
    "<user_action>\n  <context>The user ran a code review. Here is the reviewer's full "
    "output; the user may ask for some of its comments to be resolved.</context>\n"
    "  <action>review</action>\n  <results>\n{results}\n  </results>\n</user_action>"
)


def _message(role: str, text: str) -> dict[str, Any]:
    return {"type": "message", "role": role, "content": [{"type": "input_text", "text": text}]}


def user_item(hint: str) -> dict[str, Any]:
    """The review's ``userMessage`` item (the hint): in ``review/start``'s reply and the turn."""
    return {
        "type": "userMessage",
        "id": uuid7(),
        "content": [{"type": "text", "text": hint, "text_elements": []}],
    }


# -- the reviewer's answer ---------------------------------------------------------------------


def parse_output(text: str) -> dict[str, Any]:
    """The reviewer's JSON object, found in ``text`` (alone or inside prose); without one the
    whole text is the overall explanation."""
    candidates = [text.strip()]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            value = orjson.loads(candidate)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return {"findings": [], "overall_explanation": text.strip()}


def _findings(output: dict[str, Any]) -> list[dict[str, Any]]:
    raw = output.get("findings")
    return [f for f in raw if isinstance(f, dict)] if isinstance(raw, list) else []


def _location(finding: dict[str, Any]) -> str:
    where = finding.get("code_location")
    where = where if isinstance(where, dict) else {}
    lines = where.get("line_range")
    lines = lines if isinstance(lines, dict) else {}
    return (
        f"{where.get('absolute_file_path', '?')}:{lines.get('start', '?')}-{lines.get('end', '?')}"
    )


def findings_block(findings: list[dict[str, Any]]) -> str:
    lines = ["", "Full review comments:" if len(findings) > 1 else "Review comment:"]
    for finding in findings:
        lines += ["", f"- {finding.get('title', '')} \u2014 {_location(finding)}"]
        lines += [f"  {line}" for line in str(finding.get("body", "")).splitlines()]
    return "\n".join(lines)


def render(output: dict[str, Any]) -> str:
    """The review as clients show it (``exitedReviewMode.review``, the agent message)."""
    sections = []
    explanation = output.get("overall_explanation")
    if isinstance(explanation, str) and explanation.strip():
        sections.append(explanation.strip())
    findings = _findings(output)
    if findings:
        sections.append(findings_block(findings).strip())
    return "\n\n".join(sections) if sections else FALLBACK_MESSAGE


# -- the turn ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewTurn:
    """A review turn begun (the thread is reserved for it), not yet launched."""

    thread: LoadedThread
    turn: ActiveTurn
    request: ReviewRequest
    user: dict[str, Any]  # the userMessage item (the hint), already in the reply's turn

    def reply(self) -> ReviewStartResponse:
        """``review/start``'s result: the turn (listing the review's ``userMessage``) and the
        thread the review runs on (this one: inline delivery)."""
        items: list[ThreadItem] = [views.wire_item(self.user)]
        return {
            "turn": {**views.turn_view(self.turn), "items": items},
            "reviewThreadId": self.thread.id,
        }


async def begin(manager: ThreadManager, thread: LoadedThread, target: Any) -> ReviewTurn:
    """Check the thread can take a turn and the target can be reviewed (git runs here), then
    reserve the thread for the review turn. A busy thread, a target that is not a git
    repository, an unknown branch or commit are ``EngineError``s, raised before any turn."""
    manager.check_can_begin(thread, "review")
    request = await review_target.resolve(target, Path(thread.settings.cwd))
    turn = manager.begin_turn(thread, "review")
    return ReviewTurn(thread, turn, request, user_item(request.hint))


async def launch(manager: ThreadManager, review: ReviewTurn) -> None:
    """Run a begun review turn (after ``review/start``'s reply: ``turn/started`` follows it)."""
    await manager.launch_body(
        review.thread, review.turn, lambda runner: run(runner, review.request, review.user)
    )


async def run(runner: TurnRunner, request: ReviewRequest, user: dict[str, Any]) -> None:
    """The review turn, from after ``turn/started`` to ``turn/completed``."""
    await runner.run_body(lambda: _review(runner, request, user))


async def _item(r: TurnRunner, item: dict[str, Any]) -> None:
    await r.emit("item/started", views.item_started(r.thread, r.turn, item))
    r.record_item(item)
    await r.emit("item/completed", views.item_completed(r.thread, r.turn, item))


async def _review(r: TurnRunner, request: ReviewRequest, user: dict[str, Any]) -> None:
    r.record("event_msg", {"type": "user_message", "message": request.hint})
    if not r.thread.preview:
        r.thread.preview = request.hint[:200]
    await _item(r, user)
    await _item(r, {"type": "enteredReviewMode", "id": uuid7(), "review": request.hint})
    prompt = [_message("developer", REVIEW_GUIDELINES), _message("user", request.prompt)]
    # The thread's model and settings, none of its tools: the diff is in the prompt.
    model_request = replace(r.model_request(prompt), tools=[], output_schema=None)
    text = await r.with_retries(lambda: r.last_message(model_request))
    rendered = render(parse_output(text))
    await _item(r, {"type": "exitedReviewMode", "id": uuid7(), "review": rendered})
    message = {"type": "agentMessage", "id": uuid7(), "text": rendered, "phase": None}
    await _item(r, message)
    r.turn.last_agent_item = message
    # The main conversation learns the review's results (the next turn may act on them).
    note = _message("user", _USER_ACTION.replace("{results}", rendered))
    r.thread.history.append(note)
    r.record("response_item", note)
