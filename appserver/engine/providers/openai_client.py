"""HTTP model clients built on the `openai` package: Responses API and Chat Completions.

Owns: `ResponsesClient` (wire_api "responses"), `ChatClient` (wire_api "chat", for local
OpenAI-compatible servers: Ollama, vLLM, llama.cpp, LM Studio), the mapping from their
streams to the normalized events in `events.py`, the mapping of `openai` exceptions to
`ProviderError`, and `make_client`.

Retry policy (decided here, documented for the engine): each `stream()` call makes exactly ONE
HTTP attempt — the `openai` package is built with `max_retries=0` — so that every retry is
visible to the engine, which emits `error` notifications with `willRetry` and owns the budget
(`ProviderInfo.request_max_retries` for failures before the stream starts,
`stream_max_retries` for disconnects after). `ProviderError.retryable` says whether a retry
can help.

Stream events are read as plain dicts (`event.to_dict()`), never through the typed event
classes' attributes, so a provider (or a test mock) that sends sparse or unknown fields works.

Never: log or repr an API key; send the key (or OPENAI_ORG_ID/OPENAI_PROJECT_ID) anywhere
but the configured provider (a key stored by an API-key login goes only to providers with
`requires_openai_auth`, see `config.api_key`); let the `openai` package fall back to
$OPENAI_API_KEY for a provider that did not ask for it; retry on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import Any, Literal

import httpx2
import openai
from openai import AsyncOpenAI

from appserver.store.redaction import redact_url_credentials

from .config import ProviderInfo, api_key, missing_key_message, needs_key
from .events import (
    Completed,
    MessageDone,
    MessageStarted,
    ModelClient,
    ModelEvent,
    ModelRequest,
    ProviderError,
    ReasoningContentDelta,
    ReasoningDone,
    ReasoningStarted,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    TextDelta,
    ToolCall,
    Usage,
    connection_failed,
    content_text,
    error_for_code,
    error_for_status,
    stream_disconnected,
)
from .sse import json_events

# Sent to the `openai` package when a provider needs no key; the Authorization header is then
# removed per request, so this value never leaves the process.
log = logging.getLogger("appserver.engine")

_NO_KEY_PLACEHOLDER = "no-key"
_CONNECT_TIMEOUT_S = 30.0


def _as_dict(obj: object) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        result = to_dict()
        if isinstance(result, dict):
            return result
    raise ProviderError(
        f"unexpected stream payload: {type(obj).__name__}",
        retryable=True,
        codex_error_info=stream_disconnected(None),
    )


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


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
        message = _str(inner.get("message")) or message
        code = _str(inner.get("code")) or code
    status = exc.status_code
    return error_for_status(
        status,
        f"unexpected status {status}: {message}",
        code=code,
        retry_after_s=_retry_after(exc.response.headers),
    )


def _read_failure(exc: Exception) -> ProviderError:
    """A failure while reading a streamed body that had started (status 200 and headers):
    past the idle bound a timeout, otherwise a disconnect; either may succeed on a retry."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, TimeoutError | httpx2.TimeoutException):
        return _map_exception(TimeoutError(), streaming=True)
    return ProviderError(
        f"stream disconnected before completion: {exc}",
        retryable=True,
        codex_error_info=stream_disconnected(None),
    )


def _stream_error(error: object) -> ProviderError:
    """An ``{"error": {...}}`` object sent inside a stream (as the ``openai`` package reads it)."""
    inner = error if isinstance(error, dict) else {}
    message = _str(inner.get("message")) or "An error occurred during streaming"
    by_code = error_for_code(_str(inner.get("code")), message)
    if by_code is not None:
        return by_code
    return ProviderError(message, retryable=True, codex_error_info=stream_disconnected(None))


def _map_exception(exc: BaseException, *, streaming: bool) -> ProviderError:
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


class _OpenAIBackedClient:
    """Shared plumbing: credentials, the AsyncOpenAI instance, headers, idle timeout."""

    def __init__(
        self,
        info: ProviderInfo,
        *,
        api_key: str | None = None,
        env: Mapping[str, str] | None = None,
        stored_key: Callable[[], str | None] | None = None,
    ) -> None:
        self.info = info
        self._explicit_key = api_key
        self._env = env
        # Read on every request, so a login or logout applies from the next request on.
        self._stored_key = stored_key
        self._client: AsyncOpenAI | None = None
        self._client_key: str | None = None
        # Clients built for a key that has since changed: a stream may still be reading from
        # one, so they are closed with this client, not when replaced.
        self._retired: list[AsyncOpenAI] = []
        self._counter = 0

    def __repr__(self) -> str:
        url = redact_url_credentials(self.info.base_url or "")
        return f"{type(self).__name__}(provider={self.info.id!r}, base_url={url!r})"

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_{self._counter}"

    def _resolve_key(self) -> str | None:
        stored = self._stored_key() if self._stored_key is not None else None
        key = self._explicit_key or api_key(self.info, self._env, stored)
        if key is None and needs_key(self.info):
            # Fail before any network traffic, naming the variable to set.
            raise ProviderError(
                missing_key_message(self.info), retryable=False, codex_error_info="unauthorized"
            )
        return key

    def _openai(self, key: str | None) -> AsyncOpenAI:
        if self._client is not None and self._client_key == key:
            return self._client
        if self._client is not None:
            self._retired.append(self._client)
        idle = self.info.stream_idle_timeout_s
        # api_key is always passed explicitly: with None the package would read
        # $OPENAI_API_KEY and could send it to a third-party provider.
        self._client = AsyncOpenAI(
            api_key=key or _NO_KEY_PLACEHOLDER,
            base_url=self.info.base_url or None,
            max_retries=0,
            timeout=openai.Timeout(
                idle, connect=min(_CONNECT_TIMEOUT_S, idle), read=idle, write=idle, pool=idle
            ),
        )
        self._client_key = key
        return self._client

    def _headers(self, req: ModelRequest, key: str | None, accept: str) -> dict[str, Any]:
        env = os.environ if self._env is None else self._env
        headers: dict[str, Any] = {"Accept": accept}
        if key is None:
            headers["Authorization"] = openai.omit
        if self.info.id != "openai":
            # The package adds these from OPENAI_ORG_ID / OPENAI_PROJECT_ID; they belong to
            # OpenAI only.
            headers["OpenAI-Organization"] = openai.omit
            headers["OpenAI-Project"] = openai.omit
        headers.update(self.info.headers(env))
        headers.update(req.headers)
        return headers

    async def _post_stream(
        self,
        client: AsyncOpenAI,
        path: str,
        body: dict[str, Any],
        req: ModelRequest,
        key: str | None,
    ) -> openai.AsyncStream[object]:
        """POST ``body`` to ``path`` and stream the server-sent events as the JSON they carry.

        ``client.post`` with ``cast_to=object`` is the package's own call for an endpoint
        without its typed models: auth, headers, errors and the SSE decoding stay the
        package's, but each event arrives as the decoded JSON instead of being built into a
        model tree (about 0.1 ms per text delta and over 1 ms for ``response.completed``, which
        lay between a model's last byte and ``turn/completed``). The mappers read dicts anyway.
        """
        query = dict(self.info.query_params)
        options: Any = {"headers": self._headers(req, key, "text/event-stream")}
        if query:
            options["params"] = query
        return await client.post(
            path,
            cast_to=object,
            body={**body, "stream": True, **(req.extra_body or {})},
            options=options,
            stream=True,
            stream_cls=openai.AsyncStream[object],
        )

    async def _raw_events(self, stream: Any) -> AsyncGenerator[dict[str, Any], None]:
        """The stream's events as dicts; failures become ProviderErrors. The gap between two
        events is bounded (stream_idle_timeout_ms), independent of whether the server trickles
        keep-alive bytes that would reset a socket read timeout. A malformed event is skipped
        (``sse.json_events``); an ``error`` object fails the stream. The SSE generators are
        closed here, explicitly, whichever way the stream ends."""
        events = json_events(stream.response.aiter_lines())
        try:
            while True:
                try:
                    async with asyncio.timeout(self.info.stream_idle_timeout_s):
                        raw = await events.__anext__()
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    raise _read_failure(exc) from exc
                if not isinstance(raw, dict):
                    log.warning("skipping a model stream event that is not an object")
                    continue
                error = raw.get("error")
                if error and "type" not in raw:
                    raise _stream_error(error)
                yield raw
        finally:
            await events.aclose()

    async def aclose(self) -> None:
        for retired in self._retired:
            await retired.close()
        self._retired.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None


# ---------------------------------------------------------------------------------------------
# Responses API


def _input_for_request(items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """History items as sent with store=false: without server-side item ids (they refer to
    nothing that was stored and the API rejects them) and without null fields."""
    out: list[dict[str, Any]] = []
    for item in items:
        clean = {k: v for k, v in item.items() if v is not None}
        if clean.get("type") != "item_reference":
            clean.pop("id", None)
        out.append(clean)
    return out


def _usage_from_responses(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    in_details = raw.get("input_tokens_details") or {}
    out_details = raw.get("output_tokens_details") or {}
    input_tokens = _int(raw.get("input_tokens"))
    output_tokens = _int(raw.get("output_tokens"))
    return Usage(
        input_tokens=input_tokens,
        cached_input_tokens=_int(in_details.get("cached_tokens")),
        output_tokens=output_tokens,
        reasoning_output_tokens=_int(out_details.get("reasoning_tokens")),
        total_tokens=_int(raw.get("total_tokens")) or input_tokens + output_tokens,
    )


def _failed_error(response: object, default: str) -> ProviderError:
    error = response.get("error") if isinstance(response, dict) else None
    code = _str(error.get("code")) if isinstance(error, dict) else None
    message = (_str(error.get("message")) if isinstance(error, dict) else None) or default
    by_code = error_for_code(code, message)
    if by_code is not None:
        return by_code
    if code == "rate_limit_exceeded":
        return ProviderError(message, retryable=True, codex_error_info="rateLimitExceeded")
    # Codex treats any other failed response as a retryable stream error.
    return ProviderError(message, retryable=True, codex_error_info=stream_disconnected(None))


class ResponsesStreamMapper:
    """Turns Responses-API stream events (dicts) into normalized events.

    Normalizes sparse streams: a delta for an item that was never `added` first yields the
    matching *Started event; a missing item id gets a synthetic one; a message whose `done`
    item has no content gets the text of its deltas; and items still open at
    `response.completed` (deltas but no `output_item.done`) are closed from their deltas, so
    every *Started is always followed by its *Done.
    """

    def __init__(self) -> None:
        self.response_id: str | None = None
        self.completed = False
        self._started: set[str] = set()
        self._parts: set[tuple[str, int]] = set()
        self._message_id: str | None = None
        self._reasoning_id: str | None = None
        self._texts: dict[str, list[str]] = {}
        self._summaries: dict[str, dict[int, list[str]]] = {}
        # Started but not yet done, in start order (dicts keep insertion order).
        self._open: dict[str, Literal["message", "reasoning"]] = {}
        self._synthetic = 0

    def _synth(self, prefix: str) -> str:
        self._synthetic += 1
        return f"{prefix}_synthetic_{self._synthetic}"

    def _message(self, item_id: str | None, out: list[ModelEvent]) -> str:
        item_id = item_id or self._message_id or self._synth("msg")
        if item_id not in self._started:
            self._started.add(item_id)
            self._open[item_id] = "message"
            out.append(MessageStarted(item_id))
        self._message_id = item_id
        return item_id

    def _reasoning(self, item_id: str | None, out: list[ModelEvent]) -> str:
        item_id = item_id or self._reasoning_id or self._synth("rs")
        if item_id not in self._started:
            self._started.add(item_id)
            self._open[item_id] = "reasoning"
            out.append(ReasoningStarted(item_id))
        self._reasoning_id = item_id
        return item_id

    def _part(self, item_id: str, index: int, out: list[ModelEvent]) -> None:
        if (item_id, index) not in self._parts:
            self._parts.add((item_id, index))
            out.append(ReasoningSummaryPartAdded(item_id, index))

    def feed(self, ev: dict[str, Any]) -> list[ModelEvent]:
        kind = ev.get("type")
        out: list[ModelEvent] = []
        if kind == "response.created":
            response = ev.get("response")
            if isinstance(response, dict):
                self.response_id = _str(response.get("id")) or self.response_id
        elif kind == "response.output_item.added":
            item = ev.get("item")
            if isinstance(item, dict):
                if item.get("type") == "message":
                    self._message(_str(item.get("id")), out)
                elif item.get("type") == "reasoning":
                    self._reasoning(_str(item.get("id")), out)
        elif kind == "response.output_text.delta":
            delta = _str(ev.get("delta")) or ""
            item_id = self._message(_str(ev.get("item_id")), out)
            self._texts.setdefault(item_id, []).append(delta)
            out.append(TextDelta(item_id, delta))
        elif kind == "response.reasoning_summary_part.added":
            item_id = self._reasoning(_str(ev.get("item_id")), out)
            self._part(item_id, _int(ev.get("summary_index")), out)
        elif kind == "response.reasoning_summary_text.delta":
            item_id = self._reasoning(_str(ev.get("item_id")), out)
            index = _int(ev.get("summary_index"))
            self._part(item_id, index, out)
            delta = _str(ev.get("delta")) or ""
            self._summaries.setdefault(item_id, {}).setdefault(index, []).append(delta)
            out.append(ReasoningSummaryDelta(item_id, index, delta))
        elif kind == "response.reasoning_text.delta":
            item_id = self._reasoning(_str(ev.get("item_id")), out)
            index = _int(ev.get("content_index"))
            out.append(ReasoningContentDelta(item_id, index, _str(ev.get("delta")) or ""))
        elif kind == "response.output_item.done":
            item = ev.get("item")
            if isinstance(item, dict):
                self._item_done(item, out)
        elif kind == "response.completed":
            response = ev.get("response")
            response = response if isinstance(response, dict) else {}
            self.completed = True
            self._close_open_items(out)
            out.append(
                Completed(
                    _str(response.get("id")) or self.response_id,
                    _usage_from_responses(response.get("usage")),
                )
            )
        elif kind == "response.failed":
            raise _failed_error(ev.get("response"), "model response failed")
        elif kind == "response.incomplete":
            response = ev.get("response")
            details = response.get("incomplete_details") if isinstance(response, dict) else None
            reason = _str(details.get("reason")) if isinstance(details, dict) else None
            raise ProviderError(
                f"Incomplete response returned, reason: {reason or 'unknown'}",
                retryable=True,
                codex_error_info=stream_disconnected(None),
            )
        elif kind == "error":
            raise _failed_error({"error": ev}, "model stream error")
        # Everything else (content_part.*, output_text.done, web_search_call.*, …) carries
        # nothing the engine needs beyond what output_item.done repeats.
        return out

    def _close_open_items(self, out: list[ModelEvent]) -> None:
        for item_id, kind in list(self._open.items()):
            if kind == "message":
                text = "".join(self._texts.pop(item_id, []))
                raw = {
                    "type": "message",
                    "role": "assistant",
                    "id": item_id,
                    "content": [{"type": "output_text", "text": text}],
                }
                out.append(MessageDone(item_id, text, raw))
            else:
                parts = self._summaries.pop(item_id, {})
                summary = ["".join(parts[i]) for i in sorted(parts)]
                raw = {
                    "type": "reasoning",
                    "id": item_id,
                    "summary": [{"type": "summary_text", "text": t} for t in summary],
                }
                out.append(ReasoningDone(item_id, summary, [], raw))
        self._open.clear()

    def _item_done(self, item: dict[str, Any], out: list[ModelEvent]) -> None:
        kind = item.get("type")
        if kind == "message":
            if item.get("role", "assistant") != "assistant":
                return
            item_id = self._message(_str(item.get("id")), out)
            content = item.get("content")
            parts = [
                p["text"]
                for p in (content if isinstance(content, list) else [])
                if isinstance(p, dict) and p.get("type") == "output_text" and "text" in p
            ]
            deltas = self._texts.pop(item_id, [])
            text = "".join(parts) if parts else "".join(deltas)
            self._open.pop(item_id, None)
            raw = dict(item)
            raw.setdefault("role", "assistant")
            raw.setdefault("id", item_id)
            if not parts:
                raw["content"] = [{"type": "output_text", "text": text}]
            self._message_id = None
            out.append(MessageDone(item_id, text, raw))
        elif kind == "reasoning":
            item_id = self._reasoning(_str(item.get("id")), out)
            self._open.pop(item_id, None)
            self._summaries.pop(item_id, None)
            summary = item.get("summary")
            content = item.get("content")
            out.append(
                ReasoningDone(
                    item_id,
                    [
                        str(p.get("text", ""))
                        for p in (summary if isinstance(summary, list) else [])
                        if isinstance(p, dict)
                    ],
                    [
                        str(p.get("text", ""))
                        for p in (content if isinstance(content, list) else [])
                        if isinstance(p, dict)
                    ],
                    {**item, "id": item_id},
                )
            )
            self._reasoning_id = None
        elif kind in ("function_call", "custom_tool_call"):
            call_id = _str(item.get("call_id")) or _str(item.get("id")) or self._synth("call")
            name = _str(item.get("name")) or ""
            if kind == "function_call":
                args = item.get("arguments")
                arguments = args if isinstance(args, str) else json.dumps(args or {})
                out.append(ToolCall(call_id, name, arguments, "function", dict(item)))
            else:
                out.append(
                    ToolCall(call_id, name, _str(item.get("input")) or "", "custom", dict(item))
                )


class ResponsesClient(_OpenAIBackedClient):
    """wire_api = "responses": `POST {base_url}/responses` with stream=true, store=false."""

    def _body(self, req: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": req.model,
            "input": _input_for_request(req.input),
            "store": False,
        }
        if req.instructions:
            body["instructions"] = req.instructions
        if req.tools:
            body["tools"] = req.tools
            body["tool_choice"] = "auto"
            body["parallel_tool_calls"] = req.parallel_tool_calls
        if req.reasoning_effort is not None or req.reasoning_summary is not None:
            reasoning: dict[str, Any] = {}
            if req.reasoning_effort is not None:
                reasoning["effort"] = req.reasoning_effort
            if req.reasoning_summary is not None:
                reasoning["summary"] = req.reasoning_summary
            body["reasoning"] = reasoning
            # With store=false, reasoning can only be carried to the next request encrypted.
            body["include"] = ["reasoning.encrypted_content"]
        if req.prompt_cache_key:
            body["prompt_cache_key"] = req.prompt_cache_key
        if req.output_schema is not None:
            body["text"] = {
                "format": {
                    "type": "json_schema",
                    "name": "codex_output_schema",
                    "schema": req.output_schema,
                    "strict": True,
                }
            }
        return body

    async def stream(self, req: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        key = self._resolve_key()
        client = self._openai(key)
        try:
            stream = await self._post_stream(client, "/responses", self._body(req), req, key)
        except Exception as exc:
            raise _map_exception(exc, streaming=False) from exc
        mapper = ResponsesStreamMapper()
        raws = self._raw_events(stream)
        try:
            async for raw in raws:
                for event in mapper.feed(raw):
                    yield event
                if mapper.completed:
                    return
            raise ProviderError(
                "stream closed before response.completed",
                retryable=True,
                codex_error_info=stream_disconnected(None),
            )
        finally:
            # Closes the event generators, then releases the connection, on every exit,
            # including the consumer closing this generator early (turn interrupted).
            await raws.aclose()
            await stream.close()


# ---------------------------------------------------------------------------------------------
# Chat Completions


def _text_of(content: object) -> str:
    if content is None or isinstance(content, str | list):
        return content_text(content)
    return json.dumps(content)


def _chat_user_content(content: object) -> str | list[dict[str, Any]]:
    if not isinstance(content, list):
        return _text_of(content)
    parts: list[dict[str, Any]] = []
    has_image = False
    for p in content:
        if not isinstance(p, dict):
            continue
        if p.get("type") in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": str(p.get("text", ""))})
        elif p.get("type") == "input_image" and p.get("image_url"):
            has_image = True
            parts.append({"type": "image_url", "image_url": {"url": p["image_url"]}})
    if not has_image:
        # Plain strings are what every local server understands.
        return "".join(p["text"] for p in parts)
    return parts


def responses_to_chat_messages(
    instructions: str, items: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Convert a Responses-API history into Chat Completions messages.

    developer → system; function/custom tool calls → assistant `tool_calls` (consecutive calls
    share one assistant message, attached to the assistant text right before them); tool
    outputs → `tool` messages; reasoning items are dropped (chat has no place for them).
    """
    messages: list[dict[str, Any]] = []
    if instructions:
        messages.append({"role": "system", "content": instructions})
    for item in items:
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = str(item.get("role", "user"))
            if role == "developer":
                role = "system"
            if role == "assistant":
                messages.append({"role": "assistant", "content": _text_of(item.get("content"))})
            else:
                messages.append({"role": role, "content": _chat_user_content(item.get("content"))})
        elif kind in ("function_call", "custom_tool_call"):
            if kind == "function_call":
                arguments = item.get("arguments")
                args = arguments if isinstance(arguments, str) else json.dumps(arguments or {})
            else:
                args = json.dumps({"input": item.get("input", "")})
            call = {
                "id": str(item.get("call_id", "")),
                "type": "function",
                "function": {"name": str(item.get("name", "")), "arguments": args},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
                if not last.get("content"):
                    last["content"] = None
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind in ("function_call_output", "custom_tool_call_output"):
            output = item.get("output")
            if isinstance(output, dict) and "content" in output:
                output = output["content"]
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": str(item.get("call_id", "")),
                    "content": _text_of(output),
                }
            )
    return messages


def _flat_namespaces(tools: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """A ``namespace`` tool (an MCP server's) as its functions named ``<namespace>__<name>``:
    Chat Completions has no namespaces (``engine/mcp/turn.py`` reads the name back)."""
    out: list[dict[str, Any]] = []
    for tool in tools:
        if tool.get("type") != "namespace":
            out.append(tool)
            continue
        prefix = str(tool.get("name", ""))
        for inner in tool.get("tools") or []:
            if isinstance(inner, dict) and inner.get("type") == "function":
                out.append({**inner, "name": f"{prefix}__{inner.get('name', '')}"})
    return out


def responses_tools_to_chat(tools: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Function tools map 1:1; a custom (free-form) tool becomes a function taking one string
    argument `input`; other tool kinds (web_search, …) have no chat equivalent and are
    dropped."""
    out: list[dict[str, Any]] = []
    for tool in _flat_namespaces(tools):
        kind = tool.get("type")
        if kind == "function":
            fn: dict[str, Any] = {
                "name": tool.get("name", ""),
                "parameters": tool.get("parameters") or {"type": "object", "properties": {}},
            }
            if tool.get("description"):
                fn["description"] = tool["description"]
            out.append({"type": "function", "function": fn})
        elif kind == "custom":
            out.append(
                {
                    "type": "function",
                    "function": {
                        "name": tool.get("name", ""),
                        "description": tool.get("description", ""),
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "input": {"type": "string", "description": "The raw tool input."}
                            },
                            "required": ["input"],
                        },
                    },
                }
            )
    return out


def _usage_from_chat(raw: object) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = _int(raw.get("prompt_tokens"))
    completion = _int(raw.get("completion_tokens"))
    p_details = raw.get("prompt_tokens_details") or {}
    c_details = raw.get("completion_tokens_details") or {}
    return Usage(
        input_tokens=prompt,
        cached_input_tokens=_int(p_details.get("cached_tokens")),
        output_tokens=completion,
        reasoning_output_tokens=_int(c_details.get("reasoning_tokens")),
        total_tokens=_int(raw.get("total_tokens")) or prompt + completion,
    )


class ChatClient(_OpenAIBackedClient):
    """wire_api = "chat": `POST {base_url}/chat/completions` with stream=true."""

    def _body(self, req: ModelRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": req.model,
            "messages": responses_to_chat_messages(req.instructions, req.input),
            "stream_options": {"include_usage": True},
        }
        tools = responses_tools_to_chat(req.tools)
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        if req.reasoning_effort is not None:
            body["reasoning_effort"] = req.reasoning_effort
        if req.output_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": "codex_output_schema",
                    "schema": req.output_schema,
                    "strict": True,
                },
            }
        return body

    async def stream(self, req: ModelRequest) -> AsyncGenerator[ModelEvent, None]:
        key = self._resolve_key()
        client = self._openai(key)
        custom_tools = {str(t.get("name")) for t in req.tools if t.get("type") == "custom"}
        try:
            stream = await self._post_stream(client, "/chat/completions", self._body(req), req, key)
        except Exception as exc:
            raise _map_exception(exc, streaming=False) from exc

        response_id: str | None = None
        usage: Usage | None = None
        finished = False
        message_id: str | None = None
        text: list[str] = []
        reasoning_id: str | None = None
        reasoning: list[str] = []
        reasoning_done = False
        calls: dict[int, dict[str, str]] = {}

        def close_reasoning() -> list[ModelEvent]:
            nonlocal reasoning_done
            if reasoning_id is None or reasoning_done:
                return []
            reasoning_done = True
            joined = "".join(reasoning)
            raw = {
                "type": "reasoning",
                "id": reasoning_id,
                "summary": [{"type": "summary_text", "text": joined}],
            }
            return [ReasoningDone(reasoning_id, [joined], [], raw)]

        raws = self._raw_events(stream)
        try:
            async for chunk in raws:
                response_id = _str(chunk.get("id")) or response_id
                if chunk.get("usage"):
                    usage = _usage_from_chat(chunk["usage"])
                choices = chunk.get("choices") or []
                if not choices or not isinstance(choices[0], dict):
                    continue
                choice = choices[0]
                if choice.get("finish_reason"):
                    finished = True
                delta = choice.get("delta") or {}
                # Local reasoning models stream their thoughts in a side field.
                thought = _str(delta.get("reasoning_content")) or _str(delta.get("reasoning"))
                if thought:
                    if reasoning_id is None:
                        reasoning_id = self._next_id("rs")
                        yield ReasoningStarted(reasoning_id)
                        yield ReasoningSummaryPartAdded(reasoning_id, 0)
                    reasoning.append(thought)
                    yield ReasoningSummaryDelta(reasoning_id, 0, thought)
                content = _str(delta.get("content"))
                if content:
                    for event in close_reasoning():
                        yield event
                    if message_id is None:
                        message_id = self._next_id("msg")
                        yield MessageStarted(message_id)
                    text.append(content)
                    yield TextDelta(message_id, content)
                for tc in delta.get("tool_calls") or []:
                    if not isinstance(tc, dict):
                        continue
                    slot = calls.setdefault(
                        _int(tc.get("index")), {"id": "", "name": "", "arguments": ""}
                    )
                    slot["id"] = slot["id"] or (_str(tc.get("id")) or "")
                    fn = tc.get("function") or {}
                    slot["name"] += _str(fn.get("name")) or ""
                    slot["arguments"] += _str(fn.get("arguments")) or ""
        finally:
            await raws.aclose()
            await stream.close()

        if not finished:
            raise ProviderError(
                "stream closed before the completion finished",
                retryable=True,
                codex_error_info=stream_disconnected(None),
            )
        for event in close_reasoning():
            yield event
        if message_id is not None:
            full = "".join(text)
            raw_msg = {
                "type": "message",
                "role": "assistant",
                "id": message_id,
                "content": [{"type": "output_text", "text": full}],
            }
            yield MessageDone(message_id, full, raw_msg)
        for index in sorted(calls):
            slot = calls[index]
            call_id = slot["id"] or self._next_id("call")
            name = slot["name"]
            if name in custom_tools:
                try:
                    parsed = json.loads(slot["arguments"] or "{}")
                    tool_input = str(parsed.get("input", "")) if isinstance(parsed, dict) else ""
                except ValueError:
                    tool_input = slot["arguments"]
                raw_call = {
                    "type": "custom_tool_call",
                    "call_id": call_id,
                    "name": name,
                    "input": tool_input,
                }
                yield ToolCall(call_id, name, tool_input, "custom", raw_call)
            else:
                raw_call = {
                    "type": "function_call",
                    "call_id": call_id,
                    "name": name,
                    "arguments": slot["arguments"],
                }
                yield ToolCall(call_id, name, slot["arguments"], "function", raw_call)
        yield Completed(response_id, usage)


def make_client(
    info: ProviderInfo,
    *,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
    stored_key: Callable[[], str | None] | None = None,
) -> ModelClient:
    """The client for `info.wire_api`. `api_key` overrides env/config lookup; `stored_key`
    returns the key saved by an API-key login, used (per request) by requires_openai_auth
    providers whose config and environment hold none."""
    if info.wire_api == "chat":
        return ChatClient(info, api_key=api_key, env=env, stored_key=stored_key)
    if info.wire_api == "scripted":
        from .scripted import ScriptedClient

        return ScriptedClient(info.script)
    return ResponsesClient(info, api_key=api_key, env=env, stored_key=stored_key)
