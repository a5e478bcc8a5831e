"""Server requests only a connected client can answer: ``item/tool/call``,
``item/tool/requestUserInput`` and ``item/permissions/requestApproval``.

Owns the road these take: sent to the thread's subscribers like an approval (same ids, same
pending map, same ``serverRequest/resolved``), with the thread's ``activeFlags`` set while they
wait, but never left pending for a client that might come back: with nobody subscribed the
request fails at once, and when the last subscriber goes away (``fail_unwatched``) the
pending ones fail. An error answer, a cancellation by a turn transition, or a departed client
all surface as ``ClientUnavailable``; callers turn that into a failed item, never a hang. It
must never decide what an answer means: callers do.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from appserver.engine import views
from appserver.engine.ports import Outbox
from appserver.engine.thread_state import ActiveTurn, LoadedThread
from appserver.protocol.errors import RpcError

if TYPE_CHECKING:
    from appserver.protocol.wire_types import Notify

# The methods this module sends; approvals (command, file change) are not among them.
CLIENT_ONLY_METHODS = frozenset(
    {"item/tool/call", "item/tool/requestUserInput", "item/permissions/requestApproval"}
)
CLIENT_GONE = "clientDisconnected"


class ClientUnavailable(Exception):
    """No answer will come: an error reply (``cancelled`` False), or a request cancelled by a
    turn transition or a departed client, or no client at all (``cancelled`` True)."""

    def __init__(self, message: str, *, cancelled: bool) -> None:
        super().__init__(message)
        self.cancelled = cancelled


class ClientOps(Protocol):
    thread: LoadedThread
    turn: ActiveTurn
    outbox: Outbox

    @property
    def emit(self) -> Notify: ...  # a notification to the thread, params typed by method

    def record_item(self, item: dict[str, Any]) -> None: ...


async def ask_client(
    ops: ClientOps, method: str, params: Mapping[str, Any], flag: str | None = None
) -> Any:
    """Send ``method`` to the thread's clients and return the first answer's result.
    ``flag`` (``waitingOnUserInput``, ``waitingOnApproval``) is shown in the thread's status
    while it waits. Raises ``ClientUnavailable`` when no answer will come."""
    thread = ops.thread
    if not ops.outbox.subscribers(thread.id):
        raise ClientUnavailable("no client is connected to answer", cancelled=True)
    if flag is not None:
        thread.waiting_flags = [flag]
        await _status_changed(ops)
    try:
        pending = await ops.outbox.request_thread(thread.id, method, params)
        return await pending
    except asyncio.CancelledError:
        raise
    except RpcError as exc:
        reason = exc.data.get("reason") if isinstance(exc.data, dict) else None
        cancelled = reason in (CLIENT_GONE, "turnTransition")
        raise ClientUnavailable(exc.message, cancelled=cancelled) from None
    except Exception as exc:
        raise ClientUnavailable(str(exc), cancelled=True) from None
    finally:
        if flag is not None:
            thread.waiting_flags = []
            if thread.active_turn is ops.turn:
                await _status_changed(ops)


async def _status_changed(ops: ClientOps) -> None:
    params = views.status_changed(ops.thread.id, ops.thread)
    await ops.outbox.broadcast("thread/status/changed", params)


async def fail_unwatched(threads: Iterable[LoadedThread], outbox: Outbox) -> int:
    """After a client went away: fail the client-only requests of every thread nobody is
    subscribed to any more (the calls waiting on them then fail cleanly). How many failed."""
    failed = 0
    for thread in threads:
        if thread.active_turn is not None and not outbox.subscribers(thread.id):
            failed += await outbox.cancel_requests(thread.id, CLIENT_ONLY_METHODS, CLIENT_GONE)
    return failed
