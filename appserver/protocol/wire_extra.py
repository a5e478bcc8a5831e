"""Wire shapes the stable schema leaves out, written by hand: the replies of the experimental
methods we serve, and the fields we add to a schema reply.

Owns, beside the generated ``wire_types``: the ``*Response`` of each experimental method (as
the reference answers them, ``observed-0.169.md``) and of the stable ones the schema gives no
response (``fuzzyFileSearch``), and ``*Result`` types, which are a
schema ``*Response`` plus what this server adds to it (``sandboxEnforcement`` on the thread
replies, ``readState``/``readStates`` on the read and list replies, ``initialTurnsPage`` on a
resume). Like ``wire_types`` it is imported under ``TYPE_CHECKING`` only (it imports
``wire_types``, whose classes cost tens of milliseconds to build); it must never hold a
shape the schema does have.
"""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from appserver.protocol.wire_types import (
    CommandExecutionRequestApprovalParams,
    FuzzyFileSearchResult,
    ReasoningEffort,
    Thread,
    ThreadForkResponse,
    ThreadListResponse,
    ThreadReadResponse,
    ThreadReadState,
    ThreadResumeResponse,
    ThreadStartResponse,
)


class TurnIds(TypedDict):
    """The ``threadId``/``turnId`` pair most turn notifications carry (spread into them)."""

    threadId: str
    turnId: str


class CommandApprovalRequest(CommandExecutionRequestApprovalParams):
    """``item/commandExecution/requestApproval`` as the reference sends it: the decisions it
    offers are listed (``transcript-approval.jsonl``), which the schema does not name."""

    availableDecisions: NotRequired[list[Any]]


class ThreadStartResult(ThreadStartResponse):
    # How the sandbox is enforced here (ours, not Codex's): the backend that confines
    # commands, "approval" (none works: restricted commands are asked about) or "none".
    sandboxEnforcement: str


class ThreadForkResult(ThreadForkResponse):
    sandboxEnforcement: str


class ThreadResumeResult(ThreadResumeResponse):
    sandboxEnforcement: str
    initialTurnsPage: None


class ThreadReadResult(ThreadReadResponse):
    readState: ThreadReadState | None


class ThreadListResult(ThreadListResponse):
    readStates: dict[str, ThreadReadState]


class ThreadSearchHit(TypedDict):
    thread: Thread
    snippet: str


class ThreadSearchResponse(TypedDict):
    data: list[ThreadSearchHit]
    nextCursor: str | None
    backwardsCursor: str | None


class ThreadReadStateUpdateResponse(TypedDict):
    readState: ThreadReadState


class ThreadBackgroundTerminalsListResponse(TypedDict):
    data: list[Any]
    nextCursor: str | None


class CollaborationModePreset(TypedDict):
    """As the reference lists them (note the snake_case ``reasoning_effort``)."""

    name: str
    mode: Literal["plan", "default"]
    model: str | None
    reasoning_effort: ReasoningEffort | None


class CollaborationModeListResponse(TypedDict):
    data: list[CollaborationModePreset]


class GovCloudRequirementsResponse(TypedDict):
    isGovCloud: bool
    shouldWarn: bool


class MockExperimentalMethodResponse(TypedDict):
    echoed: Any


class ThreadSettingsUpdateResponse(TypedDict):
    """``thread/settings/update`` (experimental) answers ``{}``; the settings follow in
    ``thread/settings/updated``."""


class FuzzyFileSearchResponse(TypedDict):
    """``fuzzyFileSearch``'s reply (the schema has its params and its session notifications'
    ``FuzzyFileSearchResult``, but no response): the best matches, best first."""

    files: list[FuzzyFileSearchResult]
