"""Helpers for provider tests: drain a client's stream with a bounded wait."""

from __future__ import annotations

import asyncio

from appserver.engine.providers import ModelClient, ModelEvent, ModelRequest, ProviderError

# Every wait in these tests is bounded by this (seconds); nothing sleeps.
WAIT = 10.0


async def collect(client: ModelClient, req: ModelRequest) -> list[ModelEvent]:
    async with asyncio.timeout(WAIT):
        return [ev async for ev in client.stream(req)]


async def collect_error(
    client: ModelClient, req: ModelRequest
) -> tuple[list[ModelEvent], ProviderError]:
    """Events yielded before the stream failed, and the error (fails the test if none)."""
    events: list[ModelEvent] = []
    async with asyncio.timeout(WAIT):
        try:
            async for ev in client.stream(req):
                events.append(ev)
        except ProviderError as exc:
            return events, exc
    raise AssertionError(f"expected a ProviderError, got events {events!r}")
