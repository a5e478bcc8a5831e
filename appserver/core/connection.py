"""Per-connection session state.

Owns ``ConnectionState``: the handshake flags, the client's capabilities and the sink its
messages go to. Connection ids come from one process-wide counter. This module must never
hold thread state: subscriptions live in the router.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from appserver.core.sinks import OutboundSink

_ids = itertools.count(1)


def next_connection_id() -> int:
    return next(_ids)


@dataclass(eq=False, slots=True)
class ConnectionState:
    id: int
    origin: str  # "stdio" | "webSocket" | "unixSocket" | "inProcess"
    sink: OutboundSink
    # The transport checked a credential before this connection opened (a WebSocket upgrade
    # with a bearer token or JWT). The host APIs' boundary reads it; see appserver/host.
    authenticated: bool = False
    initialized: bool = False
    experimental_api: bool = False
    opted_out: frozenset[str] = frozenset()
    client_name: str | None = None
    client_version: str | None = None
    closed: bool = False
    disconnect: Callable[[], None] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def wants(self, method: str) -> bool:
        return method not in self.opted_out
