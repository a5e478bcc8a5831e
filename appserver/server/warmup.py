"""Building the params validators of the methods a session calls first, in idle loop time.

Owns ``start_warmup``: right after ``App.load`` registered the methods, a task builds the
pydantic validators (``MethodSpec.adapter``, deferred until first use) of ``FIRST_METHODS``, one
per loop turn, so the first ``thread/list`` after a client's ``initialize`` does not pay 20 ms
or more to build one. Between two builds it yields, so a request that arrives meanwhile waits
for at most one build; a method already built is skipped. Then, once no request has arrived
for ``QUIET_S`` (or after ``QUIET_WAIT_MAX_S`` at most), it calls ``then``: the App starts the
model client's background build there, so that thread's imports (CPU under the GIL) do not
slow the burst of requests a client sends after ``initialize``, only the idle time after it.

Must never: change what a method accepts (the same adapter is built, only earlier), or fail
loudly (a build that fails is left for the method's first request, which reports it as
before).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from appserver.protocol.registry import MethodRegistry

log = logging.getLogger("appserver.server")

# What clients send first after initialize, in that order.
FIRST_METHODS = (
    "thread/list",
    "thread/start",
    "turn/start",
    "thread/resume",
    "thread/read",
    "model/list",
    "config/read",
    "account/read",
)


QUIET_S = 0.1
QUIET_WAIT_MAX_S = 2.0


def start_warmup(
    registry: MethodRegistry,
    then: Callable[[], object],
    requests_seen: Callable[[], int] | None = None,
) -> asyncio.Task[None] | None:
    """The warm-up task; outside a running loop (nothing to overlap with) only ``then()``
    is called, at once, and the result is None."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        then()
        return None
    coro = _build(registry, FIRST_METHODS, then, requests_seen)
    return loop.create_task(coro, name="method-warmup")


async def _build(
    registry: MethodRegistry,
    names: tuple[str, ...],
    then: Callable[[], object],
    requests_seen: Callable[[], int] | None,
) -> None:
    for name in names:
        await asyncio.sleep(0)  # whatever is queued goes first
        spec = registry.get(name)
        if spec is None:
            continue
        try:
            spec.adapter.rebuild()  # builds only a deferred schema; None when built already
        except Exception:
            log.debug("building the params validator of %s failed", name, exc_info=True)
    await asyncio.sleep(0)
    if requests_seen is not None:
        await _quiet_gap(requests_seen)
    then()


async def _quiet_gap(requests_seen: Callable[[], int]) -> None:
    """Return once ``QUIET_S`` passed without a new request, or after ``QUIET_WAIT_MAX_S``."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + QUIET_WAIT_MAX_S
    last = requests_seen()
    while loop.time() < give_up:
        await asyncio.sleep(QUIET_S)  # not a synchronisation: sampling for a quiet gap
        seen = requests_seen()
        if seen == last:
            return
        last = seen
