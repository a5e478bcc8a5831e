"""Server-sent events: the ``data`` of each event in a model's streamed HTTP body.

Owns splitting the body's lines into events (the WHATWG rules: ``data:`` lines joined with
newlines, one optional space after the colon dropped, comment lines and other fields ignored, a
blank line ends an event) and decoding each event's data as JSON. An event whose data is not
JSON is skipped with a log line and counted, as the reference does, so one malformed line does
not fail a turn whose stream is otherwise whole; ``[DONE]`` (Chat Completions) ends the stream.

Hand-written rather than the ``openai`` package's stream iterator because that iterator ends
at the first undecodable event (there is no way to skip it), and its decoder is private API;
the format is a dozen lines of a public spec. Every generator here closes the one it reads
from in a ``finally``, so the whole chain is closed when the consumer closes the top one,
never left to garbage collection. This module must never touch the network itself or
interpret the decoded payloads.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import orjson

log = logging.getLogger("appserver.engine")

DONE = "[DONE]"


async def event_data(lines: AsyncIterator[str]) -> AsyncGenerator[str, None]:
    """The ``data`` of each complete event read from ``lines`` (without line endings)."""
    data: list[str] = []
    try:
        async for raw in lines:
            line = raw.rstrip("\r\n")
            if not line:
                if data:
                    yield "\n".join(data)
                    data = []
                continue
            if line.startswith(":"):
                continue  # a comment (keep-alive)
            field, _, value = line.partition(":")
            if field == "data":
                data.append(value[1:] if value.startswith(" ") else value)
        if data:
            # A last event the body did not end with a blank line.
            yield "\n".join(data)
    finally:
        aclose = getattr(lines, "aclose", None)
        if aclose is not None:
            await aclose()


def _decode(data: str) -> Any:
    """orjson (several times faster per event); what it refuses and the standard decoder
    takes (NaN, integers past 64 bits) goes to the standard decoder, so nothing changes."""
    try:
        return orjson.loads(data)
    except ValueError:
        return json.loads(data)


class SkippedCounter:
    """How many malformed events a stream skipped (for logs and tests)."""

    def __init__(self) -> None:
        self.skipped = 0


async def json_events(
    lines: AsyncIterator[str], counter: SkippedCounter | None = None
) -> AsyncGenerator[Any, None]:
    """Each event's data decoded as JSON; malformed ones skipped; ends at ``[DONE]``."""
    events = event_data(lines)
    try:
        async for data in events:
            if data.startswith(DONE):
                async for _ in events:
                    pass  # the rest of the body, so the connection can be reused
                return
            try:
                payload = _decode(data)
            except ValueError:
                if counter is not None:
                    counter.skipped += 1
                log.warning("skipping a malformed event in the model stream: %.200r", data)
                continue
            yield payload
    finally:
        await events.aclose()
