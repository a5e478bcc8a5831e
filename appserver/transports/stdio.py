"""The stdio transport: one connection, JSONL on stdin/stdout.

Owns the stdin reader loop (chunked reads through ``LineSplitter``, so an oversized line is
dropped without being buffered whole; it yields to the dispatcher every 64 lines of a read),
the stdout writer loop (batches of queued messages, encoded once, written with one call), and
the stdout guard: the real stdout file descriptor is duplicated for protocol lines and fd 1 is
pointed at stderr, so a stray ``print`` anywhere cannot corrupt the wire. Stdin EOF closes the
connection. This module must never write anything but protocol lines to the protocol
descriptor.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import stat
import sys
from collections.abc import Awaitable, Callable

from appserver.core.connection import ConnectionState, next_connection_id
from appserver.core.processor import MessageProcessor
from appserver.core.sinks import Policy, QueueSink
from appserver.transports.decode import decode_message
from appserver.transports.framing import LineSplitter

log = logging.getLogger("appserver.transport")

DEFAULT_MAX_LINE = 64 * 1024 * 1024
READ_CHUNK = 256 * 1024
YIELD_EVERY_LINES = 64


def claim_stdout() -> int:
    """Return a private fd for protocol output and send fd 1 (and ``sys.stdout``) to stderr."""
    sys.stdout.flush()
    proto_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return proto_fd


async def serve_stdio(
    processor: MessageProcessor,
    *,
    stdin_fd: int = 0,
    stdout_fd: int | None = None,
    max_line: int = DEFAULT_MAX_LINE,
    queue_messages: int = 1024,
) -> None:
    """Serve one client until stdin reaches EOF; then close the connection and return."""
    out_fd = claim_stdout() if stdout_fd is None else stdout_fd
    sink = QueueSink(Policy.AWAIT, max_messages=queue_messages)
    conn = ConnectionState(next_connection_id(), "stdio", sink)
    processor.open_connection(conn)
    writer = asyncio.create_task(_write_loop(sink, out_fd))
    try:
        await _read_loop(processor, conn, stdin_fd, max_line)
    finally:
        await processor.close_connection(conn.id)
        # Let queued replies go out before we return (bounded: the peer may be gone).
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(writer), timeout=1.0)
        writer.cancel()


async def _read_loop(
    processor: MessageProcessor, conn: ConnectionState, fd: int, max_line: int
) -> None:
    loop = asyncio.get_running_loop()
    if _is_stream(fd):
        reader = asyncio.StreamReader(limit=READ_CHUNK * 2)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader),
            os.fdopen(fd, "rb", buffering=0, closefd=False),
        )
        read: Callable[[int], Awaitable[bytes]] = reader.read
    else:
        # A regular file or a tty cannot be watched by the event loop (uvloop even aborts);
        # blocking reads in a worker thread serve them.
        async def read_blocking(n: int) -> bytes:
            return await loop.run_in_executor(None, os.read, fd, n)

        read = read_blocking

    splitter = LineSplitter(max_line)
    while True:
        chunk = await read(READ_CHUNK)
        if not chunk:
            return
        for n, line in enumerate(splitter.feed(chunk), 1):
            msg = decode_message(line, conn.id)
            if msg is None:
                continue
            await processor.ingest(conn, msg)
            if n % YIELD_EVERY_LINES == 0:
                # One read can hold thousands of lines: let the dispatcher drain the ingress
                # queue between slices, so a burst is answered rather than refused -32001.
                await asyncio.sleep(0)


async def _write_loop(sink: QueueSink, fd: int) -> None:
    loop = asyncio.get_running_loop()
    writer: asyncio.StreamWriter | None = None
    if _is_stream(fd):
        transport, protocol = await loop.connect_write_pipe(
            asyncio.streams.FlowControlMixin, os.fdopen(fd, "wb", buffering=0, closefd=False)
        )
        writer = asyncio.StreamWriter(transport, protocol, None, loop)
    while True:
        batch = await sink.next_batch()
        if not batch:
            return
        data = b"\n".join([m.encoded() for m in batch]) + b"\n"
        try:
            if writer is not None:
                writer.write(data)
                await writer.drain()
            else:
                await loop.run_in_executor(None, _write_all, fd, data)
        except (ConnectionError, OSError):
            log.info("stdout closed; stopping the writer")
            sink.close()
            return


def _is_stream(fd: int) -> bool:
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
