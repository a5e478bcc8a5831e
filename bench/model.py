"""A loopback HTTP model for the last-byte benchmark, in its own process (`python -m bench.model`).

Owns one Responses-API provider on ``127.0.0.1:<kernel-chosen port>`` (stdlib only). Every
``POST …/responses`` gets the same text reply, streamed as server-sent events with chunked
transfer encoding, one write per event: ``response.created``, ``response.output_item.added``,
``--count`` ``response.output_text.delta`` events of ``--chunk`` each. Then it **holds**: it
waits for one line on stdin, which the harness writes once its client has received all of
the text, so the server under test is idle and caught up, as it is behind a real model that
streams slower than it can relay. Then it writes the tail, ``response.output_item.done`` +
``response.completed`` + the chunked body's terminator, in a single ``sendall``, and takes
``time.perf_counter()`` right after it returned: the model's last byte.

Protocol with the parent: the first stdout line is ``{"url": …, "clock": …}``; after that one
line per reply, ``{"last_byte": <perf_counter s>, "released": bool}`` or ``{"error": …}``.
``perf_counter`` is ``CLOCK_MONOTONIC`` on Linux, one clock for every process on the machine,
so the parent compares it with its own. EOF on stdin ends the process. ``GET …/models``
answers an empty catalogue.

Never: listen on anything but 127.0.0.1, sleep to pace events, or wait without a bound (a
hold gives up after ``--hold-timeout`` seconds and sends the tail anyway, marked
``"released": false``).
"""

from __future__ import annotations

import argparse
import json
import queue
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ITEM_ID = "msg_bench"
RESPONSE_ID = "resp_bench"


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(ev: dict[str, Any]) -> bytes:
    return _chunk(
        f"event: {ev['type']}\ndata: {json.dumps(ev, separators=(',', ':'))}\n\n".encode()
    )


def reply_parts(chunk: str, count: int) -> tuple[list[bytes], bytes]:
    """(the events before the hold, one chunked-encoding part each; the tail in one piece)."""
    head = [
        _event({"type": "response.created", "response": {"id": RESPONSE_ID}}),
        _event(
            {
                "type": "response.output_item.added",
                "item": {"type": "message", "role": "assistant", "id": ITEM_ID, "content": []},
            }
        ),
    ]
    delta = _event({"type": "response.output_text.delta", "item_id": ITEM_ID, "delta": chunk})
    head += [delta] * count
    item = {
        "type": "message",
        "role": "assistant",
        "id": ITEM_ID,
        "content": [{"type": "output_text", "text": chunk * count}],
    }
    usage = {
        "input_tokens": 1,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": count,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": count + 1,
    }
    tail = (
        _event({"type": "response.output_item.done", "item": item})
        + _event({"type": "response.completed", "response": {"id": RESPONSE_ID, "usage": usage}})
        + b"0\r\n\r\n"
    )
    return head, tail


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    head: list[bytes]
    tail: bytes
    holds: queue.Queue[bool]
    hold_timeout: float
    say_lock: threading.Lock

    def say(self, obj: dict[str, Any]) -> None:
        with self.say_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        return

    def setup(self) -> None:
        super().setup()
        # The tail goes out at once, whatever was sent before it (no Nagle delay).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _drain_body(self) -> None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                self.rfile.read(size + 2)
                if size == 0:
                    return
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)

    def _plain(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.split("?")[0].endswith("/models"):
            self._plain(200, b'{"data": [], "models": []}')
        else:
            self._plain(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        self._drain_body()
        if not self.path.split("?")[0].endswith("/responses"):
            self._plain(404, b'{"error": {"message": "not found"}}')
            return
        srv = self.server
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        write = self.wfile.write  # unbuffered: each call is one sendall
        try:
            for part in srv.head:
                write(part)
            try:
                released = srv.holds.get(timeout=srv.hold_timeout)
            except queue.Empty:
                released = False
            write(srv.tail)
            last_byte = time.perf_counter()
        except OSError as exc:
            self.close_connection = True
            srv.say({"error": repr(exc)})
            return
        srv.say({"last_byte": last_byte, "released": released})


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.model")
    ap.add_argument("--chunk", default="x", help="text of each delta")
    ap.add_argument("--count", type=int, default=200, help="deltas per reply")
    ap.add_argument("--hold-timeout", type=float, default=60.0)
    args = ap.parse_args(argv)

    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.head, httpd.tail = reply_parts(args.chunk, args.count)
    httpd.holds = queue.Queue()
    httpd.hold_timeout = args.hold_timeout
    httpd.say_lock = threading.Lock()
    serving = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    serving.start()
    port = httpd.server_address[1]
    clock = time.get_clock_info("perf_counter").implementation
    httpd.say({"url": f"http://127.0.0.1:{port}/v1", "clock": clock})
    for _ in sys.stdin.buffer:  # one line releases one held reply; EOF ends the process
        httpd.holds.put(True)
    httpd.shutdown()
    httpd.server_close()


if __name__ == "__main__":
    main()
