"""Bytes → classified message, or a logged reason to drop it.

Owns ``decode_message`` shared by the stdio and WebSocket transports, so both drop undecodable
input the same way: a log line on stderr, no reply, the connection goes on. It must never
raise on any input.
"""

from __future__ import annotations

import logging

import orjson

from appserver.protocol.envelope import Message, classify

log = logging.getLogger("appserver.transport")


def decode_message(data: bytes | str, conn_id: int) -> Message | None:
    if isinstance(data, bytes) and data.endswith(b"\r"):
        data = data[:-1]  # CRLF line endings are accepted
    try:
        obj = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        log.warning("connection %d: failed to deserialize message: %s", conn_id, exc)
        return None
    msg = classify(obj)
    if isinstance(msg, str):
        log.warning("connection %d: dropping message: %s", conn_id, msg)
        return None
    return msg
