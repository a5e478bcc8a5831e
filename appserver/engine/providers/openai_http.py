"""The HTTP side of the model clients, over the ``openai`` package: credentials, the
``AsyncOpenAI`` instance, headers, one streamed POST, and its server-sent events as dicts.

Owns ``OpenAIBackedClient``, the base of ``ResponsesClient`` and ``ChatClient``; what a body
holds and how its events are read is theirs (``responses_client``, ``chat_client``).

Retry policy (decided here, documented for the engine): each `stream()` call makes exactly ONE
HTTP attempt — the `openai` package is built with `max_retries=0` — so that every retry is
visible to the engine, which emits `error` notifications with `willRetry` and owns the budget
(`ProviderInfo.request_max_retries` for failures before the stream starts,
`stream_max_retries` for disconnects after). `ProviderError.retryable` says whether a retry
can help (``http_errors``).

Stream events are read as plain dicts (the decoded JSON), never through the typed event
classes' attributes, so a provider (or a test mock) that sends sparse or unknown fields works.

Never: log or repr an API key; send the key (or OPENAI_ORG_ID/OPENAI_PROJECT_ID) anywhere
but the configured provider (a key stored by an API-key login goes only to providers with
`requires_openai_auth`, see `config.api_key`); let the `openai` package fall back to
$OPENAI_API_KEY for a provider that did not ask for it; retry on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncGenerator, Callable, Mapping
from typing import Any

import openai
from openai import AsyncOpenAI

from appserver.store.redaction import redact_url_credentials

from .config import ProviderInfo, api_key, missing_key_message, needs_key
from .events import ModelRequest, ProviderError
from .http_errors import read_failure, stream_error
from .sse import json_events

log = logging.getLogger("appserver.engine")

# Sent to the `openai` package when a provider needs no key; the Authorization header is then
# removed per request, so this value never leaves the process.
_NO_KEY_PLACEHOLDER = "no-key"
_CONNECT_TIMEOUT_S = 30.0


class OpenAIBackedClient:
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

    def prepare(self) -> None:
        """Build the ``AsyncOpenAI`` instance for the current key now (it loads the TLS
        trust store), so the first request does not; any failure is left to that request."""
        with contextlib.suppress(ProviderError):
            self._openai(self._resolve_key())

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
                    raise read_failure(exc) from exc
                if not isinstance(raw, dict):
                    log.warning("skipping a model stream event that is not an object")
                    continue
                error = raw.get("error")
                if error and "type" not in raw:
                    raise stream_error(error)
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
