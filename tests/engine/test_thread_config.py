"""A thread's ``config`` map and ``turn/start.outputSchema``, end to end against the mock model.

The safety property: a tool switched off in the map is absent from the model request, and a
call to it made anyway is refused and never runs. The map is the Codex TUI's hidden title
thread's (codex-tui 0.169.0: 29 switches, ``environments: []``, ``outputSchema``), kept here as
the project's own fixture.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, start_thread
from tests.harness import open_client
from tests.support import mock_model as mm

# What the TUI sends on its title thread's thread/start (config, as captured).
TUI_TITLE_CONFIG: dict[str, Any] = {
    "features.standalone_web_search": False,
    "mcp_servers": {},
    "features.context_management": False,
    "features.unified_exec": False,
    "default_permissions": ":read-only",
    "features.goals": False,
    "features.memories": False,
    "cloud.skills.enabled": False,
    "tools.experimental_request_user_input.enabled": False,
    "features.image_generation": False,
    "features.view_image": False,
    "features.multi_agent": False,
    "features.shell_snapshot": False,
    "web_search": "disabled",
    "features.plugins": False,
    "features.hooks": False,
    "features.multi_agent_v2": False,
    "features.enable_fanout": False,
    "features.apps": False,
    "features.deferred_executor": False,
    "features.code_mode": False,
    "features.request_permissions_tool": False,
    "features.tool_suggest": False,
    "features.token_budget": False,
    "features.current_time_reminder": False,
    "skills.include_instructions": False,
    "tools.update_plan.enabled": False,
    "features.code_mode_only": False,
    "features.shell_tool": False,
}
TITLE_SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "minLength": 1, "maxLength": 36}},
    "required": ["title"],
    "additionalProperties": False,
}


def tool_names(body: dict[str, Any]) -> list[str]:
    return [t["name"] for t in body.get("tools", [])]


async def test_title_thread_has_no_tools_and_refuses_a_call(
    transport: str, home: Path, model: Any, tmp_path: Path
) -> None:
    write_config(home, model.base_url)
    marker = tmp_path / "ran.txt"
    # The model asks for a shell command anyway; then answers with the title JSON.
    model.add(
        mm.sse_function_call("call_1", "shell_command", {"command": f"touch {marker}"}),
        mm.sse_text('{"title":"Say hello"}'),
        mm.sse_text("plain"),
    )
    async with open_client(transport, home, env=ENV) as c:
        tid = await start_thread(
            c,
            home,
            sandbox="read-only",
            ephemeral=True,
            config=TUI_TITLE_CONFIG,
            environments=[],
        )
        await c.call(
            "turn/start",
            {
                "threadId": tid,
                "input": [{"type": "text", "text": "Title this"}],
                "outputSchema": TITLE_SCHEMA,
            },
        )
        turn = await completed_turn(c)
        assert turn["status"] == "completed"
        assert turn["items"][0]["text"] == '{"title":"Say hello"}'
        assert not any(m.get("method", "").endswith("requestApproval") for m in c.seen)
        kinds = {m["params"]["item"]["type"] for m in c.seen if m.get("method") == "item/started"}
        assert "commandExecution" not in kinds
        # outputSchema is for that turn only.
        await c.call("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "next"}]})
        assert (await completed_turn(c))["status"] == "completed"
    first, second, third = (r.body for r in model.model_requests())
    for body in (first, second, third):
        assert tool_names(body) == []
    assert first["text"]["format"] == {
        "type": "json_schema",
        "name": "codex_output_schema",
        "schema": TITLE_SCHEMA,
        "strict": True,
    }
    outputs = [i for i in second["input"] if i.get("type") == "function_call_output"]
    assert outputs == [
        {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": "unsupported call: shell_command",
        }
    ]
    assert "text" not in third
    assert not marker.exists()


async def test_nested_form_removes_only_the_switched_tool(home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("ok"), mm.sse_text("ok"))
    async with open_client("in_process", home, env=ENV) as c:
        for config in (
            {"features": {"shell_tool": False}},
            {"tools": {"update_plan": {"enabled": False}}},
        ):
            tid = await start_thread(c, home, config=config)
            await c.call("turn/start", {"threadId": tid, "input": [{"type": "text", "text": "x"}]})
            assert (await completed_turn(c))["status"] == "completed"
    shell_off, plan_off = (r.body for r in model.model_requests())
    assert tool_names(shell_off) == ["apply_patch", "update_plan"]
    assert tool_names(plan_off) == ["shell_command", "apply_patch"]


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"features.shell_tool": "no"}, "config.features.shell_tool"),
        ({"features": {"shell_tool": 0}}, "config.features.shell_tool"),
        ({"tools.update_plan": False}, "config.tools.update_plan"),
        ({"tools.update_plan.enabled": "off"}, "config.tools.update_plan.enabled"),
        ({"web_search": "sometimes"}, "config.web_search"),
        ({"features": 1}, "config.features"),
        ({"a..b": 1}, "a..b"),
    ],
)
async def test_wrong_types_are_refused(home: Path, config: dict[str, Any], key: str) -> None:
    async with open_client("in_process", home) as c:
        reply = await c.request("thread/start", {"config": config})
        assert reply["error"]["code"] == -32600
        assert key in reply["error"]["message"]


async def test_unknown_keys_and_mcp_servers_are_accepted(home: Path) -> None:
    config = {
        "no_such_key": {"deep": [1, 2]},
        "features.no_such_feature": True,
        "mcp_servers": {"local": {"command": "true", "args": []}},
    }
    async with open_client("in_process", home) as c:
        result = await c.call("thread/start", {"config": config})
        assert result["thread"]["id"]
