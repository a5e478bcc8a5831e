"""A real HTTP mock of a model provider (Responses API and Chat Completions) for tests.

Owns: a stdlib-only HTTP/1.1 server bound to 127.0.0.1 on a random port, running in a
background thread so it works both from plain pytest code and while an asyncio loop runs in
the test's own thread. `POST …/responses` and `POST …/chat/completions` each pop the next
queued reply for their route, in order; every request (method, path, query, headers, JSON
body) is recorded in `.requests`; `GET …/models` answers `{"data": [], "models": []}`.

Replies are built with the `sse_*`, `chat_*` and `http_error` helpers below. The SSE framing
matches what Codex's own test helpers produce: `event: <type>\\ndata: <json>\\n\\n`, sent with
chunked transfer encoding and flushed per event, `content-type: text/event-stream`.
Faults: `http_error` (any status, e.g. 429 with `Retry-After`), `sse_truncated` (the body ends
or the socket drops before `response.completed`), a `Hold` never released (a stalled stream),
`sse_with_malformed_line` (one undecodable event inside a valid stream), `sse_garbage` (no
decodable event at all) and `closed_port` (nothing listening).

A reply can contain `Hold` points (see `Reply.hold_before`): the server stops streaming there
until the test sets the hold's `release` event, and sets `reached` when it gets there. That
lets a test interrupt mid-stream deterministically, with no sleeps. Every wait is bounded
(`hold_timeout`), and closing the server releases all holds.

Never: listen on anything but 127.0.0.1, touch the network otherwise, or sleep to pace events.
"""

from __future__ import annotations

import json
import socket
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

Route = Literal["responses", "chat"]
Event = dict[str, Any]


@dataclass
class Hold:
    """A pause point inside a streamed reply."""

    release: threading.Event = field(default_factory=threading.Event)
    reached: threading.Event = field(default_factory=threading.Event)


@dataclass
class Reply:
    """One queued answer to one model request."""

    route: Route = "responses"
    status: int = 200
    parts: list[bytes | Hold] = field(default_factory=list)
    content_type: str = "text/event-stream"
    headers: dict[str, str] = field(default_factory=dict)
    # Drop the TCP connection after the last part instead of ending the chunked body cleanly
    # (a network-level disconnect rather than a clean-but-early end of stream).
    abort: bool = False
    streamed: bool = True

    def hold_before(self, index: int, release: threading.Event | None = None) -> Hold:
        """Pause before the `index`-th SSE event (0-based; len(events) = before the end)."""
        hold = Hold(release=release or threading.Event())
        seen = 0
        for pos, part in enumerate(self.parts):
            if isinstance(part, bytes):
                if seen == index:
                    self.parts.insert(pos, hold)
                    return hold
                seen += 1
        self.parts.append(hold)
        return hold

    def holds(self) -> list[Hold]:
        return [p for p in self.parts if isinstance(p, Hold)]


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: Any

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# --------------------------------------------------------------------------------------------
# Responses API SSE builders


def encode_sse(events: Iterable[Event]) -> list[bytes]:
    return [
        f"event: {ev['type']}\ndata: {json.dumps(ev, separators=(',', ':'))}\n\n".encode()
        for ev in events
    ]


def sse_usage(
    input_tokens: int = 0,
    output_tokens: int = 0,
    *,
    cached_input_tokens: int = 0,
    reasoning_output_tokens: int = 0,
    total_tokens: int | None = None,
) -> dict[str, Any]:
    """A Responses-API `usage` object for `response.completed`."""
    return {
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": cached_input_tokens},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_output_tokens},
        "total_tokens": input_tokens + output_tokens if total_tokens is None else total_tokens,
    }


def created(response_id: str = "resp_1") -> Event:
    return {"type": "response.created", "response": {"id": response_id}}


def completed(response_id: str = "resp_1", usage: dict[str, Any] | None = None) -> Event:
    return {"type": "response.completed", "response": {"id": response_id, "usage": usage}}


def message_item(text: str, item_id: str = "msg_1") -> dict[str, Any]:
    return {
        "type": "message",
        "role": "assistant",
        "id": item_id,
        "content": [{"type": "output_text", "text": text}],
    }


def text_events(
    text: str, *, item_id: str = "msg_1", chunks: list[str] | None = None, deltas: bool = True
) -> list[Event]:
    """Message output: added, deltas (default: ~3 even pieces), done."""
    if chunks is None:
        step = max(1, -(-len(text) // 3))
        chunks = [text[i : i + step] for i in range(0, len(text), step)]
    events: list[Event] = [
        {
            "type": "response.output_item.added",
            "item": {"type": "message", "role": "assistant", "id": item_id, "content": []},
        }
    ]
    if deltas:
        events += [
            {"type": "response.output_text.delta", "item_id": item_id, "delta": c} for c in chunks
        ]
    events.append({"type": "response.output_item.done", "item": message_item(text, item_id)})
    return events


def reasoning_events(
    summary: str | list[str], *, item_id: str = "rs_1", content: list[str] | None = None
) -> list[Event]:
    parts = [summary] if isinstance(summary, str) else summary
    events: list[Event] = [
        {
            "type": "response.output_item.added",
            "item": {"type": "reasoning", "id": item_id, "summary": []},
        }
    ]
    for idx, part in enumerate(parts):
        events.append(
            {
                "type": "response.reasoning_summary_part.added",
                "item_id": item_id,
                "summary_index": idx,
            }
        )
        half = len(part) // 2
        for piece in (part[:half], part[half:]):
            if piece:
                events.append(
                    {
                        "type": "response.reasoning_summary_text.delta",
                        "item_id": item_id,
                        "summary_index": idx,
                        "delta": piece,
                    }
                )
    item: dict[str, Any] = {
        "type": "reasoning",
        "id": item_id,
        "summary": [{"type": "summary_text", "text": p} for p in parts],
        "content": [{"type": "reasoning_text", "text": c} for c in content] if content else None,
        "encrypted_content": None,
    }
    events.append({"type": "response.output_item.done", "item": item})
    return events


def function_call_events(
    call_id: str, name: str, arguments: Mapping[str, Any] | str
) -> list[Event]:
    args = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
    item = {"type": "function_call", "call_id": call_id, "name": name, "arguments": args}
    return [{"type": "response.output_item.done", "item": item}]


def custom_tool_call_events(call_id: str, name: str, input: str) -> list[Event]:
    item = {"type": "custom_tool_call", "call_id": call_id, "name": name, "input": input}
    return [{"type": "response.output_item.done", "item": item}]


def _flatten(outputs: Iterable[Event | list[Event]]) -> list[Event]:
    flat: list[Event] = []
    for out in outputs:
        if isinstance(out, list):
            flat.extend(out)
        else:
            flat.append(out)
    return flat


def sse(events: Iterable[Event], *, route: Route = "responses", abort: bool = False) -> Reply:
    """A reply streaming exactly these events."""
    return Reply(route=route, parts=list(encode_sse(events)), abort=abort)


def sse_response(
    *outputs: Event | list[Event],
    response_id: str = "resp_1",
    usage: dict[str, Any] | None = None,
) -> Reply:
    """created → outputs → completed."""
    events = [created(response_id), *_flatten(outputs), completed(response_id, usage)]
    return sse(events)


def sse_text(
    text: str,
    *,
    chunks: list[str] | None = None,
    item_id: str = "msg_1",
    response_id: str = "resp_1",
    usage: dict[str, Any] | None = None,
) -> Reply:
    return sse_response(
        text_events(text, item_id=item_id, chunks=chunks), response_id=response_id, usage=usage
    )


def sse_final_message(text: str, *, item_id: str = "msg_1", response_id: str = "resp_1") -> Reply:
    """Codex's `create_final_assistant_message_sse_response`: no added/delta events at all."""
    done = {"type": "response.output_item.done", "item": message_item(text, item_id)}
    return sse_response([done], response_id=response_id)


def sse_reasoning_then_text(
    summary: str | list[str],
    text: str,
    *,
    content: list[str] | None = None,
    response_id: str = "resp_1",
    usage: dict[str, Any] | None = None,
) -> Reply:
    return sse_response(
        reasoning_events(summary, content=content),
        text_events(text),
        response_id=response_id,
        usage=usage,
    )


def sse_function_call(
    call_id: str,
    name: str,
    arguments: Mapping[str, Any] | str,
    *,
    response_id: str = "resp_1",
    usage: dict[str, Any] | None = None,
) -> Reply:
    return sse_response(
        function_call_events(call_id, name, arguments), response_id=response_id, usage=usage
    )


def sse_custom_tool_call(
    call_id: str,
    name: str,
    input: str,
    *,
    response_id: str = "resp_1",
    usage: dict[str, Any] | None = None,
) -> Reply:
    return sse_response(
        custom_tool_call_events(call_id, name, input), response_id=response_id, usage=usage
    )


def sse_failed(code: str, message: str, *, response_id: str = "resp_1") -> Reply:
    failed = {
        "type": "response.failed",
        "response": {"id": response_id, "error": {"code": code, "message": message}},
    }
    return sse([created(response_id), failed])


def sse_incomplete(reason: str = "max_output_tokens", *, response_id: str = "resp_1") -> Reply:
    incomplete = {
        "type": "response.incomplete",
        "response": {"id": response_id, "incomplete_details": {"reason": reason}},
    }
    return sse([created(response_id), incomplete])


def sse_truncated(
    *outputs: Event | list[Event], response_id: str = "resp_1", abort: bool = False
) -> Reply:
    """created → outputs, then the body ends (or, with abort, the socket drops) without
    `response.completed`."""
    return sse([created(response_id), *_flatten(outputs)], abort=abort)


def sse_with_malformed_line(
    *outputs: Event | list[Event], at: int = 2, line: bytes = b"data: {not json\n\n"
) -> Reply:
    """created → outputs → completed, with one malformed SSE event (``line``) inserted before
    the ``at``-th event."""
    reply = sse_response(*outputs)
    positions = [i for i, part in enumerate(reply.parts) if isinstance(part, bytes)]
    reply.parts.insert(positions[at] if at < len(positions) else len(reply.parts), line)
    return reply


def sse_garbage(body: bytes = b"this is not an event stream\n\n<html>oops</html>\n\n") -> Reply:
    """A 200 text/event-stream reply whose body carries no decodable event at all."""
    return Reply(parts=[body])


def http_error(
    status: int,
    body: Any = None,
    *,
    headers: Mapping[str, str] | None = None,
    route: Route = "responses",
) -> Reply:
    """A queued non-200 reply; `body` dict/list → JSON, str → as is, None → an OpenAI-style
    error object."""
    if body is None:
        body = {"error": {"message": f"mock error {status}", "type": "mock", "code": None}}
    if isinstance(body, str):
        raw, ctype = body.encode(), "text/plain"
    else:
        raw, ctype = json.dumps(body).encode(), "application/json"
    return Reply(
        route=route,
        status=status,
        parts=[raw],
        content_type=ctype,
        headers=dict(headers or {}),
        streamed=False,
    )


# --------------------------------------------------------------------------------------------
# Chat Completions SSE builders


def _chat_chunk(delta: dict[str, Any], finish: str | None = None, cid: str = "chatcmpl-1") -> Event:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": 0,
        "model": "mock-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def chat_usage(prompt_tokens: int = 0, completion_tokens: int = 0) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def encode_chat(chunks: Iterable[Event], *, done: bool = True) -> list[bytes]:
    parts = [f"data: {json.dumps(c, separators=(',', ':'))}\n\n".encode() for c in chunks]
    if done:
        parts.append(b"data: [DONE]\n\n")
    return parts


def _chat_reply(chunks: list[Event], usage: dict[str, Any] | None, *, done: bool = True) -> Reply:
    if usage is not None:
        chunks.append(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "mock-model",
                "choices": [],
                "usage": usage,
            }
        )
    return Reply(route="chat", parts=list(encode_chat(chunks, done=done)))


def chat_text(
    text: str, *, chunks: list[str] | None = None, usage: dict[str, Any] | None = None
) -> Reply:
    if chunks is None:
        step = max(1, -(-len(text) // 3))
        chunks = [text[i : i + step] for i in range(0, len(text), step)]
    events = [_chat_chunk({"role": "assistant", "content": ""})]
    events += [_chat_chunk({"content": c}) for c in chunks]
    events.append(_chat_chunk({}, finish="stop"))
    return _chat_reply(events, usage)


def chat_tool_call(
    call_id: str,
    name: str,
    arguments: Mapping[str, Any] | str,
    *,
    text: str | None = None,
    usage: dict[str, Any] | None = None,
) -> Reply:
    return chat_tool_calls([(call_id, name, arguments)], text=text, usage=usage)


def chat_tool_calls(
    calls: list[tuple[str, str, Mapping[str, Any] | str]],
    *,
    text: str | None = None,
    usage: dict[str, Any] | None = None,
) -> Reply:
    """Tool calls streamed the way OpenAI does: id+name first, arguments in two pieces."""
    events = [_chat_chunk({"role": "assistant", "content": text or None})]
    for index, (call_id, name, arguments) in enumerate(calls):
        args = arguments if isinstance(arguments, str) else json.dumps(dict(arguments))
        half = len(args) // 2
        first = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": args[:half]},
        }
        events.append(_chat_chunk({"tool_calls": [first]}))
        rest = {"index": index, "function": {"arguments": args[half:]}}
        events.append(_chat_chunk({"tool_calls": [rest]}))
    events.append(_chat_chunk({}, finish="tool_calls"))
    return _chat_reply(events, usage)


def chat_truncated(text: str) -> Reply:
    """Content chunks, then the body ends with neither finish_reason nor [DONE]."""
    events = [_chat_chunk({"role": "assistant", "content": text})]
    return _chat_reply(events, None, done=False)


# --------------------------------------------------------------------------------------------
# The server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # Tests should stay quiet; failures are visible through `.requests` instead.
        return

    def _record(self, body: Any) -> RecordedRequest:
        split = urlsplit(self.path)
        rec = RecordedRequest(
            method=self.command,
            path=split.path,
            query=dict(parse_qsl(split.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        self.server.owner._record(rec)
        return rec

    def _read_body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def _send_plain(self, status: int, body: bytes, ctype: str, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self) -> None:
        rec = self._record(None)
        if rec.path.endswith("/models"):
            self._send_plain(200, b'{"data": [], "models": []}', "application/json", {})
        else:
            self._send_plain(404, b'{"error": {"message": "not found"}}', "application/json", {})

    def do_POST(self) -> None:
        rec = self._record(self._read_body())
        route: Route | None = None
        if rec.path.endswith("/responses"):
            route = "responses"
        elif rec.path.endswith("/chat/completions"):
            route = "chat"
        if route is None:
            self._send_plain(404, b'{"error": {"message": "not found"}}', "application/json", {})
            return
        reply = self.server.owner._pop(route)
        if reply is None:
            msg = {"error": {"message": f"mock model server: no scripted reply left for {route}"}}
            self._send_plain(500, json.dumps(msg).encode(), "application/json", {})
            return
        if not reply.streamed:
            body = b"".join(p for p in reply.parts if isinstance(p, bytes))
            self._send_plain(reply.status, body, reply.content_type, reply.headers)
            return
        self._stream(reply)

    def _stream(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("content-type", reply.content_type)
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        try:
            for part in reply.parts:
                if isinstance(part, Hold):
                    self.wfile.flush()
                    part.reached.set()
                    part.release.wait(self.server.owner.hold_timeout)
                    if self.server.owner.closing.is_set():
                        break
                    continue
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                self.wfile.flush()
            if reply.abort or self.server.owner.closing.is_set():
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            # The client went away mid-stream (e.g. the turn was interrupted); that is a
            # normal outcome for a test, not a server error.
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: MockModelServer


class MockModelServer:
    """Scripted model provider on 127.0.0.1:<random port>; use as a context manager."""

    def __init__(
        self,
        responses: Iterable[Reply] = (),
        chat: Iterable[Reply] = (),
        *,
        hold_timeout: float = 30.0,
    ) -> None:
        self.hold_timeout = hold_timeout
        self.closing = threading.Event()
        self.requests: list[RecordedRequest] = []
        self._queues: dict[Route, deque[Reply]] = {"responses": deque(), "chat": deque()}
        self._all_holds: list[Hold] = []
        self._cond = threading.Condition()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.add(*responses)
        self.add(*chat)

    # -- queue ---------------------------------------------------------------------------

    def add(self, *replies: Reply) -> None:
        """Queue replies; each goes to the route it was built for."""
        with self._cond:
            for reply in replies:
                self._queues[reply.route].append(reply)
                self._all_holds.extend(reply.holds())

    def pending(self, route: Route = "responses") -> int:
        with self._cond:
            return len(self._queues[route])

    def _pop(self, route: Route) -> Reply | None:
        with self._cond:
            queue = self._queues[route]
            reply = queue.popleft() if queue else None
            if reply is not None:
                # Holds added after queueing (hold_before on a queued reply) still get released
                # on close.
                self._all_holds.extend(h for h in reply.holds() if h not in self._all_holds)
            return reply

    def _record(self, rec: RecordedRequest) -> None:
        with self._cond:
            self.requests.append(rec)
            self._cond.notify_all()

    def wait_for_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until at least `count` requests were received (bounded by `timeout`)."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise TimeoutError(f"expected {count} requests, got {len(self.requests)}")
            return list(self.requests)

    def model_requests(self, route: Route = "responses") -> list[RecordedRequest]:
        suffix = "/responses" if route == "responses" else "/chat/completions"
        with self._cond:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith(suffix)]

    # -- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server not started")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> MockModelServer:
        httpd = _Server(("127.0.0.1", 0), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self.closing.set()
        with self._cond:
            holds = list(self._all_holds)
        for hold in holds:
            hold.release.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> MockModelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def closed_port() -> int:
    """A 127.0.0.1 port with nothing listening (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def iter_sse_payloads(reply: Reply) -> Iterator[Any]:
    """Decode a reply's SSE `data:` payloads (for tests of the builders themselves)."""
    for part in reply.parts:
        if isinstance(part, bytes):
            for line in part.decode().splitlines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    yield json.loads(line[len("data: ") :])
