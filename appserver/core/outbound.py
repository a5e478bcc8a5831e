"""One outgoing message, encoded at most once, and the rules for what may merge or drop.

Owns ``OutboundMessage``, its ``Kind`` (response, error, notification, server request, or the
``LAGGED`` marker a lossy sink puts where it dropped messages), and the classification of
methods into "never lost" and "mergeable delta". Each message is built with its kind, so sinks
and transports never look inside a payload to learn what it is. A message built for a
broadcast is shared by every connection, so it is immutable once built and its bytes are
computed once. This module must never do I/O.
"""

from __future__ import annotations

import operator
import time
from enum import Enum
from typing import Any

import orjson

# Never dropped, never merged, on any transport (DESIGN.md, "Backpressure").
GUARANTEED_NOTIFICATIONS = frozenset({"turn/completed", "item/completed", "serverRequest/resolved"})

# Consecutive deltas of one item may merge into one message: the text a client assembles is
# unchanged. Value: the params keys that must match for two deltas to merge.
MERGEABLE_DELTAS: dict[str, tuple[str, ...]] = {
    "item/agentMessage/delta": ("threadId", "turnId", "itemId"),
    "item/commandExecution/outputDelta": ("threadId", "turnId", "itemId"),
    "item/reasoning/summaryTextDelta": ("threadId", "turnId", "itemId", "summaryIndex"),
    "item/reasoning/textDelta": ("threadId", "turnId", "itemId", "contentIndex"),
    "item/plan/delta": ("threadId", "turnId", "itemId"),
}
_MERGE_KEY_GETTERS = {m: operator.itemgetter(*keys) for m, keys in MERGEABLE_DELTAS.items()}


class Kind(Enum):
    RESPONSE = "response"
    ERROR = "error"
    NOTIFICATION = "notification"
    SERVER_REQUEST = "serverRequest"
    # Not a JSON-RPC message: "``payload["skipped"]`` messages were dropped here", queued by a
    # ``MERGE_THEN_DROP`` sink (in-process only; stdio and WebSocket never drop, never see one).
    LAGGED = "lagged"


# Bound once: a module global is cheaper to read than an enum member on the hot path.
RESPONSE = Kind.RESPONSE
ERROR = Kind.ERROR
NOTIFICATION = Kind.NOTIFICATION
SERVER_REQUEST = Kind.SERVER_REQUEST
LAGGED = Kind.LAGGED


class OutboundMessage:
    """A response, error, notification or server request on its way out.

    ``frame`` is a transport's cache of its framed bytes (the WebSocket text frame), filled by
    the first connection that writes the message, so a broadcast is framed once as well.
    """

    __slots__ = (
        "_compacted",
        "_encoded",
        "_parts",
        "_payload",
        "critical",
        "frame",
        "kind",
        "merge_key",
        "method",
    )

    def __init__(
        self,
        payload: dict[str, Any],
        kind: Kind,
        *,
        method: str | None = None,
        critical: bool = True,
        merge_key: tuple[Any, ...] | None = None,
    ) -> None:
        self._payload: dict[str, Any] | None = payload
        self.kind = kind
        self.method = method  # set for notifications only (opt-out filtering)
        self.critical = critical
        self.merge_key = merge_key
        self._encoded: bytes | None = None
        self._compacted = False
        self._parts: list[str] | None = None  # a merged delta's pieces, joined when read
        self.frame: bytes | None = None

    @property
    def payload(self) -> dict[str, Any]:
        if self._payload is None:
            # Released once encoded (see ``encoded``); a late reader gets it back from the bytes.
            assert self._encoded is not None
            self._payload = orjson.loads(self._encoded)
        parts = self._parts
        if parts is not None and len(parts) > 1:
            joined = "".join(parts)
            parts[:] = [joined]
            self._payload["params"]["delta"] = joined
        return self._payload

    def encoded(self) -> bytes:
        data = self._encoded
        if data is None:
            data = self._encoded = orjson.dumps(self.payload)
            if self.merge_key is None:
                # The bytes are the message now: a queued reply holds its bytes only, not also a
                # tree of Python objects several times their size (a stalled client's queue).
                self._payload = None
        return data

    def compact(self) -> None:
        """Give back the spare capacity orjson leaves in its output (a small message's bytes
        object keeps a ~4 KiB buffer): worth a copy for a message that waits in a backlog.
        Once per message: a broadcast sits in every backlogged connection's queue at once."""
        data = self._encoded
        if data is not None and not self._compacted:
            self._encoded = memoryview(data).tobytes()
            self._compacted = True

    def merged_with(self, later: OutboundMessage) -> OutboundMessage:
        """A delta whose text is this one's followed by ``later``'s (same merge key).

        The first merge makes a copy, because this message may sit in other connections'
        queues too. The copy belongs to the one queue that made it, so later merges append
        to it in place and the text is joined once, when read: n merges cost O(n), not O(n²).
        """
        later_payload = later.payload
        delta = later_payload["params"]["delta"]
        parts = self._parts
        if parts is not None:
            parts.append(delta)
            self._encoded = self.frame = None
            self._compacted = False
            if "emittedAtMs" in later_payload:
                assert self._payload is not None  # a mergeable delta keeps its payload
                self._payload["emittedAtMs"] = later_payload["emittedAtMs"]
            return self
        params = dict(self.payload["params"])
        payload = {"method": self.method, "params": params}
        if "emittedAtMs" in later_payload:
            payload["emittedAtMs"] = later_payload["emittedAtMs"]
        merged = OutboundMessage(
            payload, NOTIFICATION, method=self.method, critical=False, merge_key=self.merge_key
        )
        merged._parts = [params["delta"], delta]
        return merged


def response(request_id: str | int, result: Any) -> OutboundMessage:
    return OutboundMessage({"id": request_id, "result": result}, RESPONSE)


def error(request_id: str | int, err: dict[str, Any]) -> OutboundMessage:
    return OutboundMessage({"error": err, "id": request_id}, ERROR)


def server_request(request_id: int, method: str, params: dict[str, Any]) -> OutboundMessage:
    return OutboundMessage({"id": request_id, "method": method, "params": params}, SERVER_REQUEST)


def lagged(skipped: int) -> OutboundMessage:
    """The marker a lossy sink queues where it dropped ``skipped`` messages."""
    return OutboundMessage({"skipped": skipped}, LAGGED, critical=False)


def notification(method: str, params: dict[str, Any]) -> OutboundMessage:
    # Runs once per streamed delta (not per connection): keep it lean.
    getter = _MERGE_KEY_GETTERS.get(method)
    merge_key = None
    if getter is not None and isinstance(params.get("delta"), str):
        try:
            merge_key = (method, *getter(params))
        except KeyError:  # a missing key counts as None
            merge_key = (method, *map(params.get, MERGEABLE_DELTAS[method]))
    return OutboundMessage(
        {"method": method, "params": params, "emittedAtMs": time.time_ns() // 1_000_000},
        NOTIFICATION,
        method=method,
        critical=method in GUARANTEED_NOTIFICATIONS,
        merge_key=merge_key,
    )
