"""The Chat Completions client (wire_api "chat"), for local OpenAI-compatible servers
(Ollama, vLLM, llama.cpp, LM Studio): the request body and one streamed round-trip.

Owns ``ChatClient``: what a ``ModelRequest`` becomes on ``POST /chat/completions`` (usage
requested, tools and output schema translated) and driving ``ChatStreamTranslator`` over the
HTTP stream. The translations themselves are ``chat_translation``'s.
Must never: retry (one ``stream()`` call is one HTTP attempt), or read events other than as
dicts. HTTP, credentials and error mapping are ``openai_http`` / ``http_errors``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from .chat_translation import (
    ChatStreamTranslator,
    responses_to_chat_messages,
    responses_tools_to_chat,
)
from .events import ModelEvent, ModelRequest
from .http_errors import map_exception
from .openai_http import OpenAIBackedClient


class ChatClient(OpenAIBackedClient):
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
            raise map_exception(exc, streaming=False) from exc
        translator = ChatStreamTranslator(self._next_id, custom_tools)
        raws = self._raw_events(stream)
        try:
            async for chunk in raws:
                for event in translator.feed(chunk):
                    yield event
        finally:
            await raws.aclose()
            await stream.close()
        for event in translator.finish():
            yield event
