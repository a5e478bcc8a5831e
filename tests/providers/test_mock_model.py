"""The mock model server itself, driven synchronously with urllib (no event loop)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from tests.providers.helpers import WAIT
from tests.support.mock_model import MockModelServer, iter_sse_payloads, sse_text


def post(url: str, body: dict[str, Any]) -> tuple[int, str, bytes]:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as resp:
            return resp.status, resp.headers["content-type"], resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["content-type"], err.read()


def test_models_endpoint_and_request_log() -> None:
    with MockModelServer() as mock:
        with urllib.request.urlopen(f"{mock.base_url}/models", timeout=WAIT) as resp:
            assert json.loads(resp.read()) == {"data": [], "models": []}
        status, _, body = post(f"{mock.base_url}/responses?x=1", {"model": "m"})
        assert status == 500 and b"no scripted reply left" in body
        assert [(r.method, r.path) for r in mock.requests] == [
            ("GET", "/v1/models"),
            ("POST", "/v1/responses"),
        ]
        assert mock.requests[1].query == {"x": "1"} and mock.requests[1].body == {"model": "m"}


def test_sse_body_format_and_order() -> None:
    with MockModelServer() as mock:
        mock.add(sse_text("one"), sse_text("two"))
        for expected in ("one", "two"):
            status, ctype, body = post(f"{mock.base_url}/responses", {})
            assert status == 200 and ctype == "text/event-stream"
            blocks = body.decode().split("\n\n")
            assert blocks[0].startswith("event: response.created\ndata: {")
            assert blocks[-1] == ""
            payloads = [json.loads(b.split("\ndata: ", 1)[1]) for b in blocks[:-1]]
            assert payloads[-1]["type"] == "response.completed"
            done = [p for p in payloads if p["type"] == "response.output_item.done"]
            assert done[0]["item"]["content"][0]["text"] == expected
        assert mock.pending() == 0


def test_hold_pauses_until_released() -> None:
    reply = sse_text("held")
    hold = reply.hold_before(1)
    with MockModelServer(responses=[reply]) as mock:
        result: list[bytes] = []
        worker = threading.Thread(
            target=lambda: result.append(post(f"{mock.base_url}/responses", {})[2])
        )
        worker.start()
        assert hold.reached.wait(WAIT)
        assert result == []
        hold.release.set()
        worker.join(WAIT)
        assert b"response.completed" in result[0]
    assert next(p["type"] for p in iter_sse_payloads(reply)) == "response.created"
