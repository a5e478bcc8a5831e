"""``thread/inject_items`` and ``thread/settings/update`` end to end, against the mock model.

Covers: injected Responses items reach the model before the next turn's input and again after a
restart; bad items are -32600 with the reference's wording; a settings update answers ``{}``,
sends ``thread/settings/updated``, is what the next turn runs with, and is still in force after
a restart; the experimentalApi gate on ``thread/settings/update``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.harness import WireClient, open_client
from tests.support import mock_model as mm

EXPERIMENTAL = {"experimentalApi": True}

NOTE = {
    "type": "message",
    "role": "developer",
    "content": [{"type": "input_text", "text": "The user's name is Ada."}],
}
EARLIER = {
    "type": "message",
    "role": "assistant",
    "content": [{"type": "output_text", "text": "Noted."}],
}


async def start(c: WireClient, cwd: Path) -> str:
    result = await c.call("thread/start", {"cwd": str(cwd)})
    await c.notification("thread/started")
    return str(result["thread"]["id"])


async def turn(c: WireClient, thread_id: str, text: str) -> dict[str, Any]:
    await c.call("turn/start", {"threadId": thread_id, "input": [{"type": "text", "text": text}]})
    return dict((await c.notification("turn/completed"))["params"]["turn"])


def texts(body: dict[str, Any]) -> list[str]:
    return [
        part.get("text", "")
        for item in body["input"]
        if item.get("type") == "message"
        for part in item["content"]
    ]


async def test_injected_items_reach_the_model(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("Hi Ada."), mm.sse_text("Still Ada."))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start(c, home)
        assert (
            await c.call("thread/inject_items", {"threadId": tid, "items": [NOTE, EARLIER]}) == {}
        )
        assert (await turn(c, tid, "Who am I?"))["status"] == "completed"
        bad = await c.request(
            "thread/inject_items", {"threadId": tid, "items": [{"type": "message"}]}
        )
        assert bad["error"]["code"] == -32600
        assert bad["error"]["message"] == (
            "items[0] is not a valid response item: missing field `role`"
        )
        remote = {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_image", "image_url": "https://example.com/a.png"}],
        }
        bad = await c.request("thread/inject_items", {"threadId": tid, "items": [remote]})
        assert bad["error"]["message"] == (
            "remote image URLs are not supported; use an inline data URL instead"
        )
        missing = await c.request(
            "thread/inject_items",
            {"threadId": "00000000-0000-7000-8000-000000000000", "items": []},
        )
        assert missing["error"]["code"] == -32600
    async with open_client(transport, home, env=ENV) as c:
        await c.call("thread/resume", {"threadId": tid})
        await turn(c, tid, "Again?")
    first, second = (texts(r.body) for r in model.model_requests())
    assert first[:3] == ["The user's name is Ada.", "Noted.", "Who am I?"]
    assert second[:3] == first[:3]


async def test_settings_update(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("one"), mm.sse_text("two"), mm.sse_text("three"))
    async with open_client(transport, home, env=ENV) as c:
        tid = await start(c, home)
        gated = await c.request("thread/settings/update", {"threadId": tid, "model": "x"})
        assert gated["error"]["message"] == (
            "thread/settings/update requires experimentalApi capability"
        )
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        tid = await start(c, home)
        await turn(c, tid, "first")
        update = {"threadId": tid, "model": "mock-model-2", "effort": "high", "summary": "concise"}
        assert await c.call("thread/settings/update", update) == {}
        note = (await c.notification("thread/settings/updated"))["params"]
        assert note["threadId"] == tid
        settings = note["threadSettings"]
        assert settings["model"] == "mock-model-2" and settings["effort"] == "high"
        assert settings["modelProvider"] == "mock" and settings["cwd"] == str(home)
        await turn(c, tid, "second")
        bad = await c.request("thread/settings/update", {"threadId": tid, "cwd": "relative"})
        assert bad["error"]["code"] == -32600
    async with open_client(transport, home, env=ENV, capabilities=EXPERIMENTAL) as c:
        resumed = await c.call("thread/resume", {"threadId": tid})
        assert resumed["model"] == "mock-model-2" and resumed["reasoningEffort"] == "high"
        await turn(c, tid, "third")
    bodies = [r.body for r in model.model_requests()]
    assert [b["model"] for b in bodies] == ["mock-model", "mock-model-2", "mock-model-2"]
    assert bodies[1]["reasoning"] == {"effort": "high", "summary": "concise"}
