"""The Responses-API client (wire_api "responses"): the request body and one streamed round-trip.

Owns ``ResponsesClient``: what a ``ModelRequest`` becomes on ``POST /responses`` (store=false,
history without server-side ids, reasoning carried encrypted, the output schema), and driving
``ResponsesStreamMapper`` over the HTTP stream until ``response.completed``.
Must never: retry (one ``stream()`` call is one HTTP attempt), or read events other than as
dicts. HTTP, credentials and error mapping are ``openai_http`` / ``http_errors``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from typing import Any

from .events import ModelEvent, ModelRequest, ProviderError, stream_disconnected
from .http_errors import map_exception
from .openai_http import OpenAIBackedClient
from .responses_mapper import ResponsesStreamMapper


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


class ResponsesClient(OpenAIBackedClient):
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
            raise map_exception(exc, streaming=False) from exc
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
