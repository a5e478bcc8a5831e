"""The contract between the engine and model providers: the request, the normalized stream of
events one model round-trip produces, and the error type.

Owns: `ModelRequest`, the `ModelClient` protocol, the frozen event dataclasses, `Usage`,
`ProviderError` and `error_for_status` (HTTP status / API error code → CodexErrorInfo).

One `ModelClient.stream(req)` call is one model round-trip (one HTTP request). Its events, in
order, are some of: MessageStarted / TextDelta / MessageDone, ReasoningStarted /
ReasoningSummaryPartAdded / ReasoningSummaryDelta / ReasoningContentDelta / ReasoningDone,
ToolCall, and finally exactly one Completed. Any failure is raised as ProviderError (possibly
after some events were already yielded; the engine decides whether to retry the round-trip).
Every `*Done`/`ToolCall` carries `raw_item`, the Responses-API item to append to the history
that is resent in full on the next call.

Never: do I/O, hold credentials, or retry anything here.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

CodexErrorInfo: TypeAlias = str | dict[str, dict[str, int | None]]


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    cached_input_tokens: int = 0
    output_tokens: int = 0
    reasoning_output_tokens: int = 0
    total_tokens: int = 0


@dataclass(frozen=True, slots=True)
class MessageStarted:
    item_id: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    item_id: str
    delta: str


@dataclass(frozen=True, slots=True)
class MessageDone:
    item_id: str
    text: str
    raw_item: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ReasoningStarted:
    item_id: str


@dataclass(frozen=True, slots=True)
class ReasoningSummaryPartAdded:
    item_id: str
    summary_index: int


@dataclass(frozen=True, slots=True)
class ReasoningSummaryDelta:
    item_id: str
    summary_index: int
    delta: str


@dataclass(frozen=True, slots=True)
class ReasoningContentDelta:
    """Raw reasoning text (`response.reasoning_text.delta`); most models never send it and an
    engine may ignore it (the full text also arrives in ReasoningDone.content)."""

    item_id: str
    content_index: int
    delta: str


@dataclass(frozen=True, slots=True)
class ReasoningDone:
    item_id: str
    summary: list[str]
    content: list[str]
    raw_item: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ToolCall:
    call_id: str
    name: str
    # JSON text for kind="function"; the free-form input for kind="custom".
    arguments: str
    kind: Literal["function", "custom"]
    raw_item: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Completed:
    response_id: str | None
    usage: Usage | None


ModelEvent: TypeAlias = (
    MessageStarted
    | TextDelta
    | MessageDone
    | ReasoningStarted
    | ReasoningSummaryPartAdded
    | ReasoningSummaryDelta
    | ReasoningContentDelta
    | ReasoningDone
    | ToolCall
    | Completed
)


class ProviderError(Exception):
    """A failed model round-trip.

    `retryable` tells the engine whether another attempt may succeed (it owns the retry loop
    and its budget: ProviderInfo.request_max_retries / stream_max_retries). `codex_error_info`
    is the v2 CodexErrorInfo for `TurnError`/`error` notifications. `retry_after_s` carries a
    server-provided delay (Retry-After header) when there was one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        http_status: int | None = None,
        codex_error_info: CodexErrorInfo = "other",
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.http_status = http_status
        self.codex_error_info = codex_error_info
        self.retry_after_s = retry_after_s

    def __repr__(self) -> str:
        return (
            f"ProviderError({self.message!r}, retryable={self.retryable}, "
            f"http_status={self.http_status}, codex_error_info={self.codex_error_info!r})"
        )


def connection_failed(status: int | None = None) -> CodexErrorInfo:
    return {"httpConnectionFailed": {"httpStatusCode": status}}


def stream_disconnected(status: int | None = None) -> CodexErrorInfo:
    return {"responseStreamDisconnected": {"httpStatusCode": status}}


def too_many_failed_attempts(status: int | None = None) -> CodexErrorInfo:
    """For the engine, once its retry budget is spent."""
    return {"responseTooManyFailedAttempts": {"httpStatusCode": status}}


# API error codes (body `error.code`, or `response.failed` `error.code`) that decide the
# outcome regardless of the HTTP status; retrying them cannot help.
_FATAL_CODES: dict[str, CodexErrorInfo] = {
    "context_length_exceeded": "contextWindowExceeded",
    "insufficient_quota": "usageLimitExceeded",
    "usage_limit_reached": "usageLimitExceeded",
    "usage_not_included": "usageLimitExceeded",
    "invalid_prompt": "badRequest",
    "model_not_found": "modelNotFound",
}
_OVERLOAD_CODES = {"server_is_overloaded", "slow_down"}


def error_for_code(code: str | None, message: str) -> ProviderError | None:
    """The error an API error code alone decides, if any."""
    if code in _FATAL_CODES:
        return ProviderError(message, retryable=False, codex_error_info=_FATAL_CODES[code])
    if code in _OVERLOAD_CODES:
        return ProviderError(message, retryable=True, codex_error_info="serverOverloaded")
    return None


def error_for_status(
    status: int,
    message: str,
    *,
    code: str | None = None,
    retry_after_s: float | None = None,
) -> ProviderError:
    """Map a non-2xx HTTP answer to a ProviderError (shared by every client).

    Retryable: 408, 409, 429 (unless a quota code), 5xx — the same set the openai package
    itself would retry. Everything else is final.
    """
    by_code = error_for_code(code, message)
    if by_code is not None:
        by_code.http_status = status
        by_code.retry_after_s = retry_after_s
        return by_code
    info: CodexErrorInfo
    retryable = False
    if status == 401 or status == 403:
        info = "unauthorized"
    elif status == 400 or status == 422:
        info = "badRequest"
    elif status == 404 and code == "model_not_found":
        info = "modelNotFound"
    elif status == 429:
        info, retryable = "rateLimitExceeded", True
    elif status in (503, 529):
        info, retryable = "serverOverloaded", True
    elif status >= 500:
        info, retryable = "internalServerError", True
    elif status in (408, 409):
        info, retryable = connection_failed(status), True
    else:
        info = {"responseStreamConnectionFailed": {"httpStatusCode": status}}
    return ProviderError(
        message,
        retryable=retryable,
        http_status=status,
        codex_error_info=info,
        retry_after_s=retry_after_s,
    )


@dataclass
class ModelRequest:
    """One round-trip's input. `input` is the FULL history (Responses-API items) every time."""

    model: str
    instructions: str = ""
    input: list[dict[str, Any]] = field(default_factory=list)
    # Responses-API tool specs: {"type": "function", "name", "description", "parameters",
    # "strict"?} or {"type": "custom", "name", "description", "format"?}.
    tools: list[dict[str, Any]] = field(default_factory=list)
    reasoning_effort: str | None = None
    reasoning_summary: str | None = None
    # Per-request headers, e.g. originator, session_id, conversation_id.
    headers: dict[str, str] = field(default_factory=dict)
    prompt_cache_key: str | None = None
    parallel_tool_calls: bool = False
    # turn/start outputSchema → Responses `text.format` json_schema.
    output_schema: dict[str, Any] | None = None
    # Escape hatch: merged into the request body as is (e.g. service_tier, text.verbosity).
    extra_body: dict[str, Any] = field(default_factory=dict)


def content_text(content: Any) -> str:
    """The text of a Responses-API message ``content`` (a string or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") in ("input_text", "output_text", "text")
        )
    return ""


class ModelClient(Protocol):
    """Use as `async for event in client.stream(req): ...`.

    One call makes exactly one attempt. `stream()` returns an async generator: to stop early
    (interrupt), call `await gen.aclose()` (or cancel the consuming task) — that releases the
    underlying connection.
    """

    def stream(self, req: ModelRequest) -> AsyncGenerator[ModelEvent, None]: ...

    async def aclose(self) -> None: ...
