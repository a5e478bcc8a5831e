"""``fuzzyFileSearch``: the legacy one-shot search over client-given roots.

Owns the handler, its registration and the pending searches by ``cancellationToken``: a new
search with the token of one still running cancels that one, which then answers
``{files: []}`` (as the reference). Roots must be absolute; each is resolved and checked by
the boundary (a limited connection searches only beneath its roots). The search runs in a
worker thread and stops early when cancelled or when its connection closes. It must never
list a root the boundary did not check.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from appserver.core.processor import RequestContext
from appserver.host import fuzzy
from appserver.host.boundary import Boundary, absolute_path
from appserver.protocol.host_params import FuzzyFileSearchParams
from appserver.protocol.registry import MethodRegistry

if TYPE_CHECKING:
    from appserver.protocol.wire_extra import FuzzyFileSearchResponse


class HostSearchHandlers:
    def __init__(self, boundary: Boundary) -> None:
        self.boundary = boundary
        self._pending: dict[tuple[int, str], threading.Event] = {}
        self._by_conn: dict[int, set[threading.Event]] = {}

    def register(self, registry: MethodRegistry) -> None:
        registry.register(
            "fuzzyFileSearch", FuzzyFileSearchParams, self.search, result="FuzzyFileSearchResponse"
        )

    async def search(
        self, ctx: RequestContext, p: FuzzyFileSearchParams
    ) -> FuzzyFileSearchResponse:
        access = self.boundary.access(ctx.connection)
        roots = [access.resolve(absolute_path(r)) for r in p.roots]
        conn_id = ctx.connection.id
        cancelled = threading.Event()
        key = None
        if p.cancellation_token is not None:
            key = (conn_id, p.cancellation_token)
            previous = self._pending.get(key)
            if previous is not None:
                previous.set()
            self._pending[key] = cancelled
        mine = self._by_conn.setdefault(conn_id, set())
        mine.add(cancelled)
        try:
            matches = await asyncio.to_thread(fuzzy.search, p.query, roots, cancelled)
        except fuzzy.Cancelled:
            return {"files": []}
        except asyncio.CancelledError:
            cancelled.set()
            raise
        finally:
            mine.discard(cancelled)
            if key is not None and self._pending.get(key) is cancelled:
                del self._pending[key]
        return {"files": [m.wire() for m in matches]}

    def connection_closed(self, conn_id: int) -> None:
        for flag in self._by_conn.pop(conn_id, set()):
            flag.set()
        for key in [k for k in self._pending if k[0] == conn_id]:
            self._pending.pop(key).set()
