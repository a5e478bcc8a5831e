"""Server → client requests (approvals): ids, the pending map, first answer wins.

Owns ``PendingServerRequests``: one process-wide integer id counter starting at 0, and
``{id → PendingRequest}`` holding the future the waiting engine code awaits, the thread it
belongs to and the message (for replay to a client that resumes the thread). It must never
send anything itself: the sender decides where requests and ``serverRequest/resolved`` go.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass
from typing import Any

from appserver.protocol.errors import RpcError


@dataclass(frozen=True, slots=True)
class PendingRequest:
    id: int
    method: str
    params: dict[str, Any]
    thread_id: str | None
    future: asyncio.Future[Any]


class PendingServerRequests:
    def __init__(self) -> None:
        self._ids = itertools.count(0)
        self._pending: dict[int, PendingRequest] = {}

    def create(self, method: str, params: dict[str, Any], thread_id: str | None) -> PendingRequest:
        req = PendingRequest(
            next(self._ids), method, params, thread_id, asyncio.get_running_loop().create_future()
        )
        self._pending[req.id] = req
        return req

    def get(self, request_id: Any) -> PendingRequest | None:
        if isinstance(request_id, bool) or not isinstance(request_id, int):
            return None
        return self._pending.get(request_id)

    def resolve(self, request_id: Any, result: Any) -> PendingRequest | None:
        """Complete with a result; None when unknown or already answered (first answer wins)."""
        req = self.get(request_id)
        if req is None:
            return None
        del self._pending[req.id]
        if not req.future.done():
            req.future.set_result(result)
        return req

    def fail(self, request_id: Any, error: RpcError) -> PendingRequest | None:
        req = self.get(request_id)
        if req is None:
            return None
        del self._pending[req.id]
        if not req.future.done():
            req.future.set_exception(error)
        return req

    def for_thread(self, thread_id: str) -> list[PendingRequest]:
        return [r for r in self._pending.values() if r.thread_id == thread_id]

    def all(self) -> list[PendingRequest]:
        return list(self._pending.values())

    def discard(self, request_id: int) -> None:
        self._pending.pop(request_id, None)
