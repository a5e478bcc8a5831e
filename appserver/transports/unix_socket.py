"""The Unix-socket transport: the WebSocket transport, over a socket file instead of TCP.

What the reference speaks on ``--listen unix://PATH`` is WebSocket frames over the socket, one
text frame per message, as on ``ws://``: the Codex TUI's ``--remote unix://PATH`` (and its
app-server client) performs an HTTP upgrade (``GET /rpc``, Host ``localhost``) over the socket
and then speaks WebSocket; some Codex builds' servers skip the upgrade and start with frames.
Both are accepted here: a connection whose first byte is not ``G`` (an HTTP request line) is
taken as raw frames from its first byte on. Past that, every connection is served by
``WebSocketListener``'s reader and writer (same queues, merging, slow-client close).

Owns the socket file: its directory is created private (0700) when missing, the file is made
0600 right after the bind, and it is removed on exit. A leftover file is probed first: if a
server still answers on it, startup is refused (``already in use``); if nobody does (a stale
file from a killed server) it is replaced; a path that exists and is not a socket is refused.
There is no bearer-token check: the file's mode is the access control, as in Codex. It must
never know about threads or turns.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any

from websockets.asyncio.connection import Connection
from websockets.asyncio.server import ServerConnection, unix_serve
from websockets.protocol import Protocol, State

from appserver.core.processor import MessageProcessor
from appserver.transports.websocket import FLUSH_TIMEOUT, WebSocketListener, WebSocketOptions

log = logging.getLogger("appserver.transport")

SOCKET_MODE = 0o600
DIRECTORY_MODE = 0o700
# Codex's default: $CODEX_HOME/app-server-control/app-server-control.sock (here the home is
# $APPSERVER_HOME).
DEFAULT_DIRECTORY = "app-server-control"
DEFAULT_FILE = "app-server-control.sock"


class SocketInUse(Exception):
    """The socket path cannot be used; the message says why."""


def default_socket_path(home: Path) -> Path:
    return home / DEFAULT_DIRECTORY / DEFAULT_FILE


def prepare_socket_path(path: Path) -> None:
    """Make ``path`` bindable: a private parent directory, no live server, no stale file."""
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=DIRECTORY_MODE, parents=True)
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise SocketInUse(f"app-server control socket path exists and is not a socket: {path}")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
            raise SocketInUse(f"cannot probe the socket at {path}: {exc.strerror}") from None
    else:
        raise SocketInUse(f"app-server control socket is already in use at {path}")
    finally:
        probe.close()
    log.info("removing the stale socket file %s", path)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class _HttpOrRawConnection(ServerConnection):
    """A server connection that takes either an HTTP upgrade or raw WebSocket frames."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.raw = False
        self._sniffed: asyncio.Future[None] = self.loop.create_future()

    def data_received(self, data: bytes) -> None:
        if not self._sniffed.done():
            if data and not data.startswith(b"G"):
                # No request line: frames from the first byte (the handshake is skipped).
                self.raw = True
                protocol = self.protocol
                protocol.state = State.OPEN
                protocol.parser = Protocol.parse(protocol)
                next(protocol.parser)
            if data:
                self._sniffed.set_result(None)
                log.info("unix socket connection: %s", "raw frames" if self.raw else "HTTP upgrade")
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        if self.raw:  # no handshake request comes first: every event is a frame
            Connection.process_event(self, event)
        else:
            super().process_event(event)

    async def handshake(self, *args: Any, **kwargs: Any) -> None:
        await asyncio.wait(
            [self._sniffed, self.connection_lost_waiter], return_when=asyncio.FIRST_COMPLETED
        )
        if not self.raw:
            await super().handshake(*args, **kwargs)


class UnixSocketListener(WebSocketListener):
    ORIGIN = "unixSocket"

    def __init__(self, processor: MessageProcessor, path: Path, options: WebSocketOptions) -> None:
        super().__init__(processor, options)
        self.path = path
        self._inode: int | None = None

    async def start(self) -> None:
        prepare_socket_path(self.path)
        opts = self.options
        self.server = await unix_serve(
            self._handle,
            str(self.path),
            create_connection=_HttpOrRawConnection,
            process_request=self._process_request,
            max_size=opts.max_message_bytes,
            compression=None,
            ping_interval=opts.ping_interval,
            server_header="appserver",
        )
        os.chmod(self.path, SOCKET_MODE)
        self._inode = self.path.stat().st_ino
        self.ready = True

    async def close(self, flush_timeout: float = FLUSH_TIMEOUT) -> None:
        await super().close(flush_timeout)
        # Only our own file: another server may have replaced it since.
        with contextlib.suppress(OSError):
            if self._inode is not None and self.path.stat().st_ino == self._inode:
                self.path.unlink()
        self._inode = None
