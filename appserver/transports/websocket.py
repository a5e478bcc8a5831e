"""The WebSocket transport: many clients, one text frame per message.

Owns the listener (the ``websockets`` library), the HTTP side (``/healthz`` and ``/readyz``
→ 200; Origin and bearer-token checks at the upgrade, a duplicated ``Origin`` or
``Authorization`` header → 400), its drain and close (once ``drain()``
is called ``/readyz`` and every new upgrade get 503 while open connections go on; ``close()``
lets each connection's queued messages out for a moment, then closes it with 1001 and aborts a
peer that does not answer the close frame within a second), and one reader loop plus one writer
task per connection. The writer frames each message once (the frame is cached on the message,
so a broadcast is framed once for every connection) and writes a whole batch of frames with one
``transport.write`` inside the library's ``send_context`` (state check, flow control). Each
connection's outbound queue merges deltas past its soft mark and is
closed with code 1008 past its hard mark, so one slow reader never stalls the others; a peer
that does not finish that close handshake within two seconds (it stopped reading) has its TCP
connection aborted. Binary frames and undecodable text are dropped with a log line. This
module must never know about threads or turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request as HttpRequest
from websockets.http11 import Response as HttpResponse
from websockets.protocol import State

from appserver.core.connection import ConnectionState, next_connection_id
from appserver.core.outbound import OutboundMessage
from appserver.core.processor import MessageProcessor
from appserver.core.sinks import Policy, QueueSink
from appserver.transports.decode import decode_message
from appserver.transports.ws_auth import AuthFailure, UpgradePolicy

log = logging.getLogger("appserver.transport")

SLOW_CLIENT_CLOSE_CODE = 1008  # policy violation: the client fell too far behind
SLOW_CLIENT_CLOSE_REASON = "outbound queue overflow: client too slow; reconnect and thread/resume"
SLOW_CLIENT_CLOSE_TIMEOUT = 2.0  # seconds a slow peer gets to complete the close handshake
SHUTDOWN_CLOSE_CODE = 1001  # going away
SHUTDOWN_CLOSE_REASON = "server shutting down"
CLOSE_TIMEOUT = 1.0  # seconds any peer gets to answer our close frame before it is aborted
FLUSH_TIMEOUT = 0.5  # seconds queued messages get to go out before the close at shutdown
WRITE_BATCH = 1024  # messages per transport write


@dataclass(frozen=True)
class WebSocketOptions:
    host: str = "127.0.0.1"
    port: int = 8765
    max_message_bytes: int = 64 * 1024 * 1024
    queue_messages: int = 65536
    queue_soft_messages: int = 1024
    queue_bytes: int = 64 * 1024 * 1024
    ping_interval: float | None = 20.0
    policy: UpgradePolicy = field(default_factory=UpgradePolicy)


class WebSocketListener:
    # The connections' ``origin`` label (the Unix-socket listener says ``unixSocket``).
    ORIGIN = "webSocket"

    def __init__(self, processor: MessageProcessor, options: WebSocketOptions) -> None:
        self.processor = processor
        self.options = options
        self.server: Server | None = None
        self.ready = False
        self.draining = False
        # Each open connection's outbound queue and writer task (flushed at close).
        self._live: dict[ServerConnection, tuple[QueueSink, asyncio.Task[None]]] = {}

    @property
    def port(self) -> int:
        assert self.server is not None
        sock = next(iter(self.server.sockets))
        return int(sock.getsockname()[1])

    async def start(self) -> None:
        opts = self.options
        self.server = await serve(
            self._handle,
            opts.host,
            opts.port,
            process_request=self._process_request,
            max_size=opts.max_message_bytes,
            compression=None,
            ping_interval=opts.ping_interval,
            close_timeout=CLOSE_TIMEOUT,
            server_header="appserver",
        )
        self.ready = True

    def drain(self) -> None:
        """Going away: ``/readyz`` and new upgrades answer 503; open connections go on."""
        self.draining = True
        self.ready = False

    async def close(self, flush_timeout: float = FLUSH_TIMEOUT) -> None:
        """Stop listening, let queued messages out (up to ``flush_timeout``), then close every
        connection with 1001, aborting those whose peer does not answer within a second."""
        self.drain()
        server = self.server
        if server is None:
            return
        server.close(close_connections=False)
        live = list(self._live.items())
        for _, (sink, _) in live:
            sink.close()  # the writer sends what is queued, then returns
        writers = [writer for _, (_, writer) in live]
        if writers:
            await asyncio.wait(writers, timeout=flush_timeout)
        closes = [
            asyncio.ensure_future(
                _close_bounded(ws, SHUTDOWN_CLOSE_CODE, SHUTDOWN_CLOSE_REASON, CLOSE_TIMEOUT)
            )
            for ws, _ in live
        ]
        if closes:
            await asyncio.wait(closes)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(server.wait_closed(), timeout=CLOSE_TIMEOUT)

    def _process_request(self, conn: ServerConnection, request: HttpRequest) -> HttpResponse | None:
        path = request.path.split("?", 1)[0]
        headers = request.headers
        is_upgrade = "upgrade" in ",".join(headers.get_all("Connection")).lower()
        if path in ("/healthz", "/readyz") and not is_upgrade:
            if path == "/readyz" and not self.ready:
                why = "draining\n" if self.draining else "not ready\n"
                return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, why)
            return conn.respond(HTTPStatus.OK, "")
        if self.draining:
            return conn.respond(HTTPStatus.SERVICE_UNAVAILABLE, "server is shutting down\n")
        try:
            self.options.policy.check(
                _single(headers.get_all("Origin"), "Origin"),
                _single(headers.get_all("Authorization"), "Authorization"),
            )
        except AuthFailure as fail:
            log.warning("rejecting websocket request: %s", fail.reason)
            return conn.respond(fail.status, fail.reason + "\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        opts = self.options
        sink = QueueSink(
            Policy.MERGE_THEN_CLOSE,
            max_messages=opts.queue_messages,
            soft_messages=opts.queue_soft_messages,
            max_bytes=opts.queue_bytes,
            on_overflow=_closer(ws),
        )
        # With a token or JWT configured, every upgrade that got here presented a valid one.
        conn = ConnectionState(
            next_connection_id(),
            self.ORIGIN,
            sink,
            authenticated=opts.policy.requires_auth,
        )
        self.processor.open_connection(conn)
        writer = asyncio.create_task(_write_loop(ws, sink))
        self._live[ws] = (sink, writer)
        try:
            await self._read_loop(ws, conn)
        finally:
            self._live.pop(ws, None)
            await self.processor.close_connection(conn.id)
            writer.cancel()
            log.info("connection %d: websocket closed", conn.id)

    async def _read_loop(self, ws: ServerConnection, conn: ConnectionState) -> None:
        processor = self.processor
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    log.warning("connection %d: dropping unsupported binary frame", conn.id)
                    continue
                if conn.sink.closed:
                    # Closed for being too slow; until the close handshake ends, what it
                    # still sends has nobody to answer it.
                    continue
                msg = decode_message(frame, conn.id)
                if msg is None:
                    continue
                await processor.ingest(conn, msg)
        except ConnectionClosed:
            pass


def _single(values: list[str], name: str) -> str | None:
    """The one value of a header that must appear at most once. Two ``Origin`` or two
    ``Authorization`` headers are ambiguous (which one did a proxy check?): 400."""
    if len(values) > 1:
        raise AuthFailure(HTTPStatus.BAD_REQUEST, f"duplicate {name} header")
    return values[0] if values else None


def _closer(ws: ServerConnection) -> Callable[[], None]:
    def close() -> None:
        task = asyncio.ensure_future(_close_bounded(ws))
        _background.add(task)
        task.add_done_callback(_background.discard)

    return close


async def _close_bounded(
    ws: ServerConnection,
    code: int = SLOW_CLIENT_CLOSE_CODE,
    reason: str = SLOW_CLIENT_CLOSE_REASON,
    timeout: float = SLOW_CLIENT_CLOSE_TIMEOUT,
) -> None:
    """Close with ``code``, but never wait on a peer that has stopped reading or answering:
    the close frame may sit behind a full socket buffer, so past ``timeout`` the TCP
    connection is aborted."""
    with contextlib.suppress(TimeoutError, ConnectionClosed, OSError):
        await asyncio.wait_for(ws.close(code, reason), timeout)
    if ws.state is not State.CLOSED:
        what = "slow connection" if code == SLOW_CLIENT_CLOSE_CODE else "connection"
        log.warning("aborting %s: the close handshake did not finish within %.0f s", what, timeout)
        ws.transport.abort()


_background: set[asyncio.Task[Any]] = set()


def text_frame(msg: OutboundMessage) -> bytes:
    """The unmasked, unfragmented RFC 6455 text frame of ``msg`` (server → client, no
    extensions: the listener turns compression off), built once per message."""
    frame = msg.frame
    if frame is None:
        data = msg.encoded()
        n = len(data)
        if n < 126:
            header = bytes((0x81, n))
        elif n < 65536:
            header = struct.pack("!BBH", 0x81, 126, n)
        else:
            header = struct.pack("!BBQ", 0x81, 127, n)
        frame = msg.frame = header + data
    return frame


async def _write_loop(ws: ServerConnection, sink: QueueSink) -> None:
    try:
        while True:
            batch = await sink.next_batch(WRITE_BATCH)
            if not batch:
                return
            data = b"".join([text_frame(msg) for msg in batch])
            # send_context checks the connection is open, then flushes the protocol's own
            # output (pongs, close) and waits for the transport's flow control.
            async with ws.send_context():
                ws.transport.write(data)
    except ConnectionClosed:
        sink.close()
