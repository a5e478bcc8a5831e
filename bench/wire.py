"""Synchronous clients for the benchmark: a JSONL pipe to a spawned server, a raw WebSocket.

Owns ``StdioServer`` (spawn a server command with piped stdin/stdout, write lines, read lines
with deadlines, read the process's RSS) and ``WsClient`` (a minimal RFC 6455 client over a
plain loopback socket: handshake, masked text frames out, frames in, ping → pong, close codes).
Both are deliberately plain blocking code with ``select`` deadlines so that the client's own
cost per message stays small and predictable. This module must never sleep, never connect to
anything but the address it is given, and never kill a process it did not spawn.
"""

from __future__ import annotations

import base64
import contextlib
import os
import select
import socket
import struct
import subprocess
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import orjson

DELTA = b'"item/agentMessage/delta"'
TURN_COMPLETED = b'"turn/completed"'


class Timeout(Exception):
    """A bounded wait ran out."""


class Closed(Exception):
    """The peer closed the stream (EOF, or a WebSocket close frame with ``code``)."""

    def __init__(self, code: int | None = None, reason: str = "") -> None:
        super().__init__(f"closed: {code} {reason}".strip())
        self.code = code
        self.reason = reason


def rss_kb(pid: int) -> tuple[int | None, int | None]:
    """(VmRSS, VmHWM) of a process in KiB, or Nones when it is gone or not ours to read."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values.get("VmRSS"), values.get("VmHWM")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time a process has used, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def line(msg: dict[str, Any]) -> bytes:
    return orjson.dumps(msg) + b"\n"


class _Rpc:
    """Requests and replies over whichever framing a subclass reads (``messages``)."""

    _ids = 0

    def send(self, msg: dict[str, Any]) -> None:
        raise NotImplementedError

    def messages(self, deadline: float) -> list[bytes]:
        raise NotImplementedError

    def next_id(self) -> int:
        self._ids += 1
        return self._ids

    def wait_reply(self, request_id: Any, deadline: float) -> dict[str, Any]:
        """The reply to ``request_id``; other messages are read and dropped."""
        while True:
            for raw in self.messages(deadline):
                msg = orjson.loads(raw)
                if msg.get("id") == request_id and "method" not in msg:
                    return dict(msg)

    def request(self, method: str, params: Any, timeout: float = 30.0) -> dict[str, Any]:
        rid = self.next_id()
        self.send({"id": rid, "method": method, "params": params})
        return self.wait_reply(rid, time.perf_counter() + timeout)

    def initialize(self, timeout: float = 30.0) -> dict[str, Any]:
        reply = self.request("initialize", initialize_params(), timeout)
        self.send({"method": "initialized"})
        return reply


class StdioServer(_Rpc):
    """A server process speaking JSONL on its stdin/stdout."""

    def __init__(self, argv: list[str], env: dict[str, str], stderr_path: Path) -> None:
        self.stderr_file: BinaryIO = stderr_path.open("wb")
        self.spawned_at = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
            env=env,
            bufsize=0,
            close_fds=True,
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.in_fd = self.proc.stdin.fileno()
        self.out_fd = self.proc.stdout.fileno()
        self._buf = b""
        self._ids = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    # -- bytes ------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.in_fd, view)
            view = view[n:]

    def read_chunk(self, deadline: float) -> bytes:
        """Whatever stdout has (at least one byte), waiting at most until ``deadline``."""
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise Timeout
        ready, _, _ = select.select([self.out_fd], [], [], remaining)
        if not ready:
            raise Timeout
        chunk = os.read(self.out_fd, 1 << 20)
        if not chunk:
            raise Closed
        return chunk

    def messages(self, deadline: float) -> list[bytes]:
        return self.read_lines(deadline)

    def read_lines(self, deadline: float) -> list[bytes]:
        """At least one complete line (already-buffered lines first)."""
        while True:
            if b"\n" in self._buf:
                *lines, self._buf = self._buf.split(b"\n")
                return lines
            self._buf += self.read_chunk(deadline)

    # -- messages ---------------------------------------------------------------------------
    def send(self, msg: dict[str, Any]) -> None:
        self.write(line(msg))

    def rss_kb(self) -> tuple[int | None, int | None]:
        return rss_kb(self.proc.pid)

    def close(self, timeout: float = 10.0) -> int | None:
        """Close stdin (EOF ends a stdio server), wait; kill only our own child if it hangs."""
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(timeout)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr_file.close()
        return code


def initialize_params(name: str = "appserver-bench") -> dict[str, Any]:
    return {"clientInfo": {"name": name, "title": None, "version": "1"}, "capabilities": None}


# -- WebSocket --------------------------------------------------------------------------------


class WsClient(_Rpc):
    """A blocking RFC 6455 client: enough for text frames, ping/pong and close."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        rcvbuf: int | None = None,
        recv_size: int = 1 << 20,
    ) -> None:
        self.recv_size = recv_size
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or 80
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        if rcvbuf is not None:
            # Set before connect so the advertised window is small from the first segment.
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self._buf = b""
        self._pos = 0
        self._fragments: list[bytes] = []
        self._close: Closed | None = None
        self._ids = 0
        self.close_code: int | None = None
        key = base64.b64encode(os.urandom(16)).decode()
        path = parts.path or "/"
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        while b"\r\n\r\n" not in self._buf:
            data = self.sock.recv(65536)
            if not data:
                raise Closed(None, "closed during the handshake")
            self._buf += data
        head, _, self._buf = self._buf.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise Closed(None, f"upgrade refused: {status.decode(errors='replace')}")
        self.sock.settimeout(None)

    # -- frames out -------------------------------------------------------------------------
    def _send_frame(self, opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        mask = os.urandom(4)
        key = int.from_bytes((mask * (n // 4 + 1))[:n], "big") if n else 0
        masked = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big") if n else b""
        self.sock.sendall(header + mask + masked)

    def send(self, msg: dict[str, Any]) -> None:
        self._send_frame(0x1, orjson.dumps(msg))

    def close(self, code: int = 1000) -> None:
        with contextlib.suppress(OSError):
            self._send_frame(0x8, struct.pack("!H", code))
        self.sock.close()

    # -- frames in --------------------------------------------------------------------------
    def _fill(self, deadline: float) -> None:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            raise Timeout
        ready, _, _ = select.select([self.sock], [], [], remaining)
        if not ready:
            raise Timeout
        data = self.sock.recv(self.recv_size)
        if not data:
            raise Closed(self.close_code, "EOF")
        self._buf = self._buf[self._pos :] + data
        self._pos = 0

    def messages(self, deadline: float) -> list[bytes]:
        return self.read_messages(deadline)

    def read_messages(self, deadline: float) -> list[bytes]:
        """The text messages one socket read completes (at least one); ``Closed`` once a close
        frame is reached (after the messages before it were returned), ``Timeout``."""
        while True:
            out = self._parse()
            if out:
                return out
            if self._close is not None:
                raise self._close
            self._fill(deadline)

    def _parse(self) -> list[bytes]:
        out: list[bytes] = []
        buf, pos = self._buf, self._pos
        size = len(buf)
        while self._close is None and size - pos >= 2:
            b0 = buf[pos]
            n = buf[pos + 1] & 0x7F
            start = pos + 2
            if n == 126:
                if size - pos < 4:
                    break
                n = (buf[pos + 2] << 8) | buf[pos + 3]
                start = pos + 4
            elif n == 127:
                if size - pos < 10:
                    break
                n = struct.unpack_from("!Q", buf, pos + 2)[0]
                start = pos + 10
            end = start + n
            if end > size:
                break
            payload = buf[start:end]
            pos = end
            opcode = b0 & 0x0F
            if opcode <= 0x2:  # continuation, text, binary
                if not b0 & 0x80:
                    self._fragments.append(payload)
                    continue
                if self._fragments:
                    self._fragments.append(payload)
                    payload = b"".join(self._fragments)
                    self._fragments = []
                out.append(payload)
            elif opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                self.close_code = code
                self._close = Closed(code, payload[2:].decode(errors="replace"))
            elif opcode == 0x9:
                self._send_frame(0xA, payload)
        self._pos = pos
        return out


def stream_until_completed(
    read_batch: Callable[[float], list[bytes]],
    deadline: float,
    *,
    on_each: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Read one turn's messages until ``turn/completed``; assemble the agent message text.

    ``read_batch`` returns the messages one read completed; timestamps (``time.perf_counter``,
    monotonic across processes) are taken per read: the first and last read that brought a
    delta, and the one that brought ``turn/completed``. ``on_each`` runs after every message
    (the slow reader's pacing).
    """
    deltas: list[str] = []
    append = deltas.append
    loads = orjson.loads
    first = last = None
    count = 0
    while True:
        batch = read_batch(deadline)
        now = time.perf_counter()
        for raw in batch:
            if DELTA in raw:
                msg = loads(raw)
                if msg.get("method") == "item/agentMessage/delta":
                    append(msg["params"]["delta"])
                    count += 1
                    if first is None:
                        first = now
                    last = now
            elif TURN_COMPLETED in raw:
                msg = loads(raw)
                if msg.get("method") == "turn/completed":
                    return {
                        "deltas": count,
                        "text": "".join(deltas),
                        "first": first,
                        "last": last,
                        "completed": now,
                        "status": msg["params"]["turn"].get("status"),
                    }
            if on_each is not None:
                on_each()
                now = time.perf_counter()
