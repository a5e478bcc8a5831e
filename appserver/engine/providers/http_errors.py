"""Failures of an HTTP model call mapped to ``ProviderError`` (CodexErrorInfo, retryability).

Owns the mapping of ``openai`` / ``httpx2`` exceptions, HTTP statuses with their error bodies and
``Retry-After``, read failures mid-stream, and ``{"error": ...}`` objects sent inside a stream.
Whether a failure happened before the response started (``streaming=False``: a connection
failure) or after (a stream disconnect) is the caller's to say.
Must never: retry, log, or include a credential in a message; it only classifies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2
import openai

from .events import (
    ProviderError,
    connection_failed,
    error_for_code,
    error_for_status,
    stream_disconnected,
)
from .json_fields import as_str


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    if not headers:
        return None
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None  # an HTTP date; the engine's own backoff is good enough


def _status_error(exc: openai.APIStatusError) -> ProviderError:
    body = exc.body
    message = exc.message
    code = exc.code
    if isinstance(body, dict):
        nested = body.get("error")
        inner: dict[str, Any] = nested if isinstance(nested, dict) else body
        message = as_str(inner.get("message")) or message
        code = as_str(inner.get("code")) or code
    status = exc.status_code
    return error_for_status(
        status,
        f"unexpected status {status}: {message}",
        code=code,
        retry_after_s=_retry_after(exc.response.headers),
    )


def read_failure(exc: Exception) -> ProviderError:
    """A failure while reading a streamed body that had started (status 200 and headers):
    past the idle bound a timeout, otherwise a disconnect; either may succeed on a retry."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return map_exception(TimeoutError(), streaming=True)
    return ProviderError(
        f"stream disconnected before completion: {exc}",
        retryable=True,
        codex_error_info=stream_disconnected(None),
    )


def stream_error(error: object) -> ProviderError:
    """An ``{"error": {...}}`` object sent inside a stream (as the ``openai`` package reads it)."""
    inner = error if isinstance(error, dict) else {}
    message = as_str(inner.get("message")) or "An error occurred during streaming"
    by_code = error_for_code(as_str(inner.get("code")), message)
    if by_code is not None:
        return by_code
    return ProviderError(message, retryable=True, codex_error_info=stream_disconnected(None))


def map_exception(exc: BaseException, *, streaming: bool) -> ProviderError:
    """`streaming`: the HTTP response had started (200 + headers) when this happened."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc)
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        what = "idle timeout waiting for the model stream" if streaming else "request timed out"
        info = stream_disconnected(None) if streaming else connection_failed(None)
        return ProviderError(what, retryable=True, codex_error_info=info)
    if isinstance(exc, openai.APIConnectionError):
        if streaming:
            return ProviderError(
                f"stream disconnected before completion: {exc}",
                retryable=True,
                codex_error_info=stream_disconnected(None),
            )
        cause = exc.__cause__ or exc
        return ProviderError(
            f"error sending request to the model provider: {cause}",
            retryable=True,
            codex_error_info=connection_failed(None),
        )
    if isinstance(exc, openai.APIError):
        # An `error` object inside an otherwise healthy stream.
        by_code = error_for_code(exc.code, exc.message)
        if by_code is not None:
            return by_code
        return ProviderError(
            exc.message, retryable=True, codex_error_info=stream_disconnected(None)
        )
    if isinstance(exc, ValueError) and streaming:
        # A malformed SSE payload (bad JSON); another attempt may well succeed.
        return ProviderError(
            f"malformed model stream: {exc}",
            retryable=True,
            codex_error_info=stream_disconnected(None),
        )
    return ProviderError(f"model provider error: {exc}", retryable=False)
