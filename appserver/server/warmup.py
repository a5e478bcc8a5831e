"""Building the params validators of the methods a session calls first, in idle loop time.

Owns ``start_warmup``: right after ``App.load`` registered the methods, a task builds the
pydantic validators (``MethodSpec.adapter``, deferred until first use) of ``FIRST_METHODS``, one
per loop turn, so the first ``thread/list`` after a client's ``initialize`` does not pay 20 ms
or more to build one. Between two builds it yields, so a request that arrives meanwhile waits
for at most one build; a method already built is skipped. Then it calls ``then`` (the App
starts the model client's background build there, so that thread's imports do not compete
with the validators and the requests queued behind ``initialize``).

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


def start_warmup(registry: MethodRegistry, then: Callable[[], object]) -> asyncio.Task[None] | None:
    """The warm-up task; outside a running loop (nothing to overlap with) only ``then()``
    is called, at once, and the result is None."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        then()
        return None
    return loop.create_task(_build(registry, FIRST_METHODS, then), name="method-warmup")


async def _build(
    registry: MethodRegistry, names: tuple[str, ...], then: Callable[[], object]
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
    then()
