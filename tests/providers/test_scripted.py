"""ScriptedClient: script files (YAML and JSON), rules, errors and the 100k-delta fast path."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from appserver.engine.providers import (
    Completed,
    MessageDone,
    MessageStarted,
    ModelEvent,
    ModelRequest,
    ProviderInfo,
    ReasoningDone,
    ReasoningStarted,
    ReasoningSummaryDelta,
    ReasoningSummaryPartAdded,
    ScriptedClient,
    ScriptError,
    TextDelta,
    ToolCall,
    make_client,
)
from appserver.engine.providers.script import EXHAUSTED_TEXT, parse_script
from tests.providers.helpers import collect, collect_error

YAML_SCRIPT = """\
- text: "Hello! How can I help?"
- reasoning: "Thinking about it"
  text: "Done."
- shell: "echo hi"
  workdir: /tmp
  timeout_ms: 5000
- patch: |
    *** Begin Patch
    *** Add File: a.txt
    +hi
    *** End Patch
- plan: [{step: "a", status: "completed"}, {step: "b", status: "in_progress"}]
  explanation: "why"
- tool: {name: view_image, arguments: {path: "/x.png"}}
- [{text: "first"}, {shell: "ls"}, {shell: "pwd"}]
"""


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def req(
    text: str = "hi", *, tools: list[dict[str, Any]] | None = None, extra: Any = ()
) -> ModelRequest:
    return ModelRequest(model="scripted", input=[user(text), *extra], tools=tools or [])


def texts(events: list[ModelEvent]) -> list[str]:
    return [e.text for e in events if isinstance(e, MessageDone)]


def calls(events: list[ModelEvent]) -> list[ToolCall]:
    return [e for e in events if isinstance(e, ToolCall)]


async def test_yaml_script(tmp_path: Path) -> None:
    path = tmp_path / "script.yaml"
    path.write_text(YAML_SCRIPT)
    client = ScriptedClient(path)

    ev = await collect(client, req())
    assert ev[0] == MessageStarted("msg_1")
    deltas = [e.delta for e in ev if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == "Hello! How can I help?"
    assert texts(ev) == ["Hello! How can I help?"]
    assert isinstance(ev[-1], Completed) and ev[-1].response_id == "resp_1"
    assert ev[-1].usage is not None and ev[-1].usage.output_tokens > 0

    ev = await collect(client, req())
    kinds = [type(e) for e in ev]
    assert kinds[:2] == [ReasoningStarted, ReasoningSummaryPartAdded]
    assert ev[0] == ReasoningStarted("rs_1")
    assert (
        "".join(e.delta for e in ev if isinstance(e, ReasoningSummaryDelta)) == "Thinking about it"
    )
    assert next(e for e in ev if isinstance(e, ReasoningDone)).summary == ["Thinking about it"]
    assert kinds.index(ReasoningDone) < kinds.index(MessageStarted)
    assert texts(ev) == ["Done."]

    (shell,) = calls(await collect(client, req()))
    assert (shell.call_id, shell.name, shell.kind) == ("call_1", "shell_command", "function")
    assert json.loads(shell.arguments) == {
        "command": "echo hi",
        "workdir": "/tmp",
        "timeout_ms": 5000,
    }
    assert shell.raw_item["type"] == "function_call"

    (patch,) = calls(await collect(client, req()))
    assert (patch.name, patch.kind) == ("apply_patch", "custom")
    assert patch.arguments.startswith("*** Begin Patch\n") and patch.arguments.endswith(
        "End Patch\n"
    )

    (plan,) = calls(await collect(client, req()))
    assert plan.name == "update_plan"
    assert json.loads(plan.arguments) == {
        "plan": [{"step": "a", "status": "completed"}, {"step": "b", "status": "in_progress"}],
        "explanation": "why",
    }

    (tool,) = calls(await collect(client, req()))
    assert (tool.name, json.loads(tool.arguments)) == ("view_image", {"path": "/x.png"})

    ev = await collect(client, req())
    assert texts(ev) == ["first"]
    assert [json.loads(c.arguments)["command"] for c in calls(ev)] == ["ls", "pwd"]
    assert [c.call_id for c in calls(ev)] == ["call_5", "call_6"]

    assert client.remaining == 0
    assert texts(await collect(client, req())) == [EXHAUSTED_TEXT]


async def test_json_script_with_mapping_form(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    script = {
        "replies": [{"text": "one", "chunks": ["o", "ne"]}, "two"],
        "default": {"text": "fallback"},
    }
    path.write_text(json.dumps(script))
    client = make_client(ProviderInfo(id="s", name="s", wire_api="scripted", script=str(path)))
    ev = await collect(client, req())
    assert [e.delta for e in ev if isinstance(e, TextDelta)] == ["o", "ne"]
    assert texts(await collect(client, req())) == ["two"]
    assert texts(await collect(client, req())) == ["fallback"]
    assert texts(await collect(client, req())) == ["fallback"]


async def test_text_repeat_100k_is_fast() -> None:
    client = ScriptedClient([{"text_repeat": {"chunk": "x", "count": 100_000}}])
    start = time.perf_counter()
    count = 0
    done: MessageDone | None = None
    async for ev in client.stream(req()):
        if isinstance(ev, TextDelta):
            count += 1
        elif isinstance(ev, MessageDone):
            done = ev
    elapsed = time.perf_counter() - start
    assert count == 100_000
    assert done is not None and len(done.text) == 100_000
    assert elapsed < 5.0, elapsed  # typically well under 0.5 s


async def test_error_fails_once_then_the_reply_is_replayed() -> None:
    client = ScriptedClient([{"error": {"status": 500}, "text": "recovered"}, "next"])
    events, err = await collect_error(client, req())
    assert events == []
    assert err.retryable and err.http_status == 500
    assert err.codex_error_info == "internalServerError"
    assert texts(await collect(client, req())) == ["recovered"]
    assert texts(await collect(client, req())) == ["next"]


async def test_error_only_reply_then_next_reply() -> None:
    client = ScriptedClient([{"error": {"status": 503, "times": 2}}, "ok"])
    for _ in range(2):
        _, err = await collect_error(client, req())
        assert err.codex_error_info == "serverOverloaded"
    assert texts(await collect(client, req())) == ["ok"]


async def test_disconnect_after_partial_output() -> None:
    client = ScriptedClient([[{"text": "partial"}, {"error": {"disconnect": True}}]])
    events, err = await collect_error(client, req())
    assert texts(events) == ["partial"]
    assert err.retryable
    assert err.codex_error_info == {"responseStreamDisconnected": {"httpStatusCode": None}}
    assert texts(await collect(client, req())) == ["partial"]


@pytest.mark.parametrize(
    ("spec", "info", "retryable"),
    [
        ({"status": 401}, "unauthorized", False),
        ({"status": 400, "code": "context_length_exceeded"}, "contextWindowExceeded", False),
        ({"status": 429}, "rateLimitExceeded", True),
    ],
)
async def test_error_statuses(spec: dict[str, Any], info: str, retryable: bool) -> None:
    _, err = await collect_error(ScriptedClient([{"error": spec}]), req())
    assert err.codex_error_info == info and err.retryable is retryable


async def test_rules() -> None:
    script = [
        {"when_contains": "RUN_SHELL", "shell": "touch marker"},
        {"when_tool_output": True, "text": "Command finished."},
        "sequential one",
    ]
    client = ScriptedClient(script)
    (call,) = calls(await collect(client, req("please RUN_SHELL now")))
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "ok"}
    follow_up = req("please RUN_SHELL now", extra=[call.raw_item, output])
    # the user text still says RUN_SHELL, but a tool output came after it
    assert texts(await collect(client, follow_up)) == ["Command finished."]
    assert texts(await collect(client, req("hello"))) == ["sequential one"]
    # rules are never consumed
    assert len(calls(await collect(client, req("RUN_SHELL again")))) == 1


async def test_rules_section_with_reply_key(tmp_path: Path) -> None:
    path = tmp_path / "rules.yml"
    path.write_text(
        "rules:\n"
        "  - when_tool_output: 'exit 1'\n"
        "    reply: 'It failed.'\n"
        "replies:\n"
        "  - shell: 'false'\n"
    )
    client = ScriptedClient(path)
    (call,) = calls(await collect(client, req()))
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "exit 1"}
    assert texts(await collect(client, req(extra=[call.raw_item, output]))) == ["It failed."]


async def test_tool_calls_adapt_to_offered_tools() -> None:
    exec_tools = [{"type": "function", "name": "exec_command"}]
    client = ScriptedClient([{"shell": "ls"}, {"patch": "P"}])
    (shell,) = calls(await collect(client, req(tools=exec_tools)))
    assert shell.name == "exec_command" and json.loads(shell.arguments) == {"cmd": "ls"}
    patch_fn = [{"type": "function", "name": "apply_patch"}]
    (patch,) = calls(await collect(client, req(tools=patch_fn)))
    assert patch.kind == "function" and json.loads(patch.arguments) == {"input": "P"}


async def test_custom_tool_and_explicit_ids_and_usage() -> None:
    client = ScriptedClient(
        [
            {
                "tool": {"name": "grep", "input": "pattern"},
                "call_id": "c9",
                "usage": {"input_tokens": 7, "output_tokens": 2},
            }
        ]
    )
    events = await collect(client, req())
    (call,) = calls(events)
    assert (call.call_id, call.kind, call.arguments) == ("c9", "custom", "pattern")
    last = events[-1]
    assert isinstance(last, Completed) and last.usage is not None
    assert (last.usage.input_tokens, last.usage.output_tokens, last.usage.total_tokens) == (7, 2, 9)


async def test_echo_mode_without_script() -> None:
    client = make_client(ProviderInfo(id="scripted", name="s", wire_api="scripted"))
    assert texts(await collect(client, req("ping"))) == ["Echo: ping"]


async def test_interrupted_reply_is_not_replayed() -> None:
    client = ScriptedClient([{"text_repeat": {"chunk": "y", "count": 10}}, "second"])
    stream = client.stream(req())
    assert isinstance(await anext(stream), MessageStarted)
    await stream.aclose()
    assert texts(await collect(client, req())) == ["second"]


@pytest.mark.parametrize(
    ("script", "fragment"),
    [
        ([{"txt": "typo"}], "unknown key(s) ['txt']"),
        ([{"shell": 42}], "reply 1: shell must be"),
        ([[{"text": "ok"}, {"plan": "nope"}]], "reply 1, step 2: plan must be"),
        ([{"text_repeat": {"chunk": "", "count": 1}}], "text_repeat.chunk"),
        ({"replies": [], "bogus": 1}, "unknown top-level key"),
        ({"rules": [{"text": "no condition"}]}, "rule 1: a rule needs"),
        (42, "must be a list of replies"),
    ],
)
def test_script_errors_name_the_location(script: Any, fragment: str) -> None:
    with pytest.raises(ScriptError) as info:
        parse_script(script)
    assert fragment in str(info.value)


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match="cannot read script"):
        ScriptedClient(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ScriptError, match=r"bad\.json: not valid json"):
        ScriptedClient(bad)


async def test_structured_request_gets_schema_json_and_keeps_the_script() -> None:
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string", "minLength": 1, "maxLength": 12},
            "n": {"type": "integer", "minimum": 3},
            "kind": {"enum": ["a", "b"]},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        },
        "required": ["title", "n", "kind", "tags"],
        "additionalProperties": False,
    }
    client = ScriptedClient(["first reply"])
    text_input = "Make a title.\n\nUser prompt:\nSay hello please"
    req = ModelRequest(
        model="m",
        input=[{"role": "user", "content": [{"type": "input_text", "text": text_input}]}],
        output_schema=schema,
    )
    events = await collect(client, req)
    done = next(e for e in events if isinstance(e, MessageDone))
    assert json.loads(done.text) == {
        "title": "Say hello pl",
        "n": 3,
        "kind": "a",
        "tags": ["Say hello please"],
    }
    # The sequential reply is still there for the next plain request.
    assert client.remaining == 1
    plain = await collect(client, ModelRequest(model="m", input=req.input))
    assert next(e for e in plain if isinstance(e, MessageDone)).text == "first reply"
