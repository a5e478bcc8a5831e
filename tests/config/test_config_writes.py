"""Config writes over all three transports, against real files and a real HTTP mock model:
``config/value/write`` and ``config/batchWrite`` keep comments, order and the file's mode,
refuse a stale ``expectedVersion`` or a value that would not load (the file untouched), remove
a key written ``null``, are reflected by ``config/read``, and are taken live: a provider's new
``base_url`` and a new default model apply to the next turn and the next thread without a
restart. ``skills/config/write`` disables a skill in ``skills/list``; a ``-c`` override answers
``okOverridden``; another ``filePath`` is refused.
"""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

from tests.engine.conftest import ENV, write_config
from tests.engine.test_turns import completed_turn, run_turn, start_thread
from tests.harness import WireClient, open_client
from tests.support import mock_model as mm

CODE = "config_write_error_code"


def commented_config(home: Path, base_url: str) -> str:
    write_config(home, base_url)
    path = home / "config.toml"
    text = "# my settings, keep me\n" + path.read_text(encoding="utf-8").replace(
        'model = "mock-model"', 'model = "mock-model"  # the model I use'
    )
    path.write_text(text, encoding="utf-8")
    path.chmod(0o640)
    return text


async def version(c: WireClient) -> str:
    result = await c.call("config/read", {})
    return str(result["origins"]["model"]["version"])


async def write(c: WireClient, key: str, value: Any, **params: Any) -> dict[str, Any]:
    return await c.request(
        "config/value/write",
        {"keyPath": key, "value": value, "mergeStrategy": "replace", **params},
    )


async def test_write_keeps_comments_and_mode_and_read_reflects_it(
    transport: str, home: Path, model: Any
) -> None:
    commented_config(home, model.base_url)
    path = home / "config.toml"
    async with open_client(transport, home, env=ENV) as c:
        before = await version(c)
        assert before.startswith("sha256:") and len(before) == 7 + 64
        reply = await write(c, "model", "mock-model-2", expectedVersion=before)
        result = reply["result"]
        assert result["status"] == "ok" and result["overriddenMetadata"] is None
        assert Path(result["filePath"]) == path.absolute()
        text = path.read_text(encoding="utf-8")
        assert text.startswith("# my settings, keep me\n")
        assert 'model = "mock-model-2"  # the model I use' in text
        # Order kept: the provider table still follows the top-level keys.
        assert text.index("model_provider =") < text.index("[model_providers.mock]")
        assert stat.S_IMODE(path.stat().st_mode) == 0o640
        read = await c.call("config/read", {"includeLayers": True})
        assert read["config"]["model"] == "mock-model-2"
        assert read["origins"]["model"]["version"] == result["version"] != before
        assert read["layers"][0]["version"] == result["version"]
        # A nested key, then null removes it.
        await c.call(
            "config/batchWrite",
            {
                "edits": [
                    {"keyPath": "tui.theme", "value": "dark", "mergeStrategy": "upsert"},
                    {
                        "keyPath": "model_reasoning_effort",
                        "value": "low",
                        "mergeStrategy": "replace",
                    },
                ],
                "expectedVersion": result["version"],
                "reloadUserConfig": True,
            },
        )
        assert tomllib.loads(path.read_text())["tui"] == {"theme": "dark"}
        removed = await write(c, "tui.theme", None)
        assert "result" in removed
        values = tomllib.loads(path.read_text())
        assert "theme" not in values.get("tui", {}) and values["model_reasoning_effort"] == "low"
        assert (await c.call("config/read", {}))["config"]["model_reasoning_effort"] == "low"
    assert not [p for p in home.iterdir() if p.name.endswith(".tmp")]


async def test_stale_version_and_invalid_values_write_nothing(
    transport: str, home: Path, model: Any
) -> None:
    original = commented_config(home, model.base_url)
    path = home / "config.toml"
    async with open_client(transport, home, env=ENV) as c:
        stale = await version(c)
        # Someone edits the file behind the server's back: the version moves.
        path.write_text(original + "\nmodel_context_window = 50000\n", encoding="utf-8")
        edited = path.read_bytes()
        reply = await write(c, "model", "other", expectedVersion=stale)
        assert reply["error"]["code"] == -32600
        assert reply["error"]["data"][CODE] == "configVersionConflict"
        assert path.read_bytes() == edited
        for key, value in [
            ("approval_policy", "sometimes"),
            ("model_providers.mock.request_max_retries", "many"),
            ("model_providers.mock", "not a table"),
            ("sandbox_mode", 3),
            ("model_provider", "no-such-provider"),
        ]:
            reply = await write(c, key, value)
            assert reply["error"]["code"] == -32600, (key, reply)
            assert reply["error"]["data"][CODE] == "configValidationError"
            assert path.read_bytes() == edited
        reply = await write(c, "not a key path!", 1)
        assert reply["error"]["data"][CODE] == "configValidationError"
        reply = await write(c, "model", "x", filePath=str(home / "elsewhere.toml"))
        assert reply["error"]["data"][CODE] == "configLayerReadonly"
        assert not (home / "elsewhere.toml").exists()
        # The server still runs on the config it last took.
        assert (await c.call("config/read", {}))["config"]["model"] == "mock-model"
        assert path.read_bytes() == edited


async def test_live_reload_of_provider_and_default_model(
    transport: str, home: Path, model: Any
) -> None:
    commented_config(home, model.base_url)
    with mm.MockModelServer() as second:
        model.add(mm.sse_text("from the first"))
        second.add(mm.sse_text("from the second"), mm.sse_text("again the second"))
        async with open_client(transport, home, env=ENV) as c:
            tid = await start_thread(c, home)
            await run_turn(c, tid, "one")
            assert (await completed_turn(c))["status"] == "completed"
            await c.call(
                "config/batchWrite",
                {
                    "edits": [
                        {
                            "keyPath": "model_providers.mock",
                            "value": {"base_url": second.base_url},
                            "mergeStrategy": "upsert",
                        },
                        {"keyPath": "model", "value": "model-two", "mergeStrategy": "replace"},
                    ],
                    "reloadUserConfig": True,
                },
            )
            # The loaded thread keeps its model, and its provider's next turn goes to the
            # new endpoint.
            await run_turn(c, tid, "two")
            assert (await completed_turn(c))["status"] == "completed"
            assert second.requests[-1].body["model"] == "mock-model"
            # A new thread gets the new default model.
            started = await c.call("thread/start", {"cwd": str(home)})
            assert started["model"] == "model-two"
            new_tid = started["thread"]["id"]
            await run_turn(c, new_tid, "three")
            assert (await completed_turn(c))["status"] == "completed"
            assert second.requests[-1].body["model"] == "model-two"
        assert len(model.requests) == 1 and len(second.requests) == 2


async def test_provider_config_write_and_list(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    with mm.MockModelServer() as gateway:
        gateway.add(mm.sse_text("via the gateway"))
        async with open_client(transport, home, env={**ENV, "GW_KEY": "sk-gw"}) as c:
            listed = await c.call("modelProvider/list", {})
            assert listed["defaultProviderId"] == "mock" and listed["canChangeDefault"] is True
            editable = {p["id"]: p["canEdit"] for p in listed["data"]}
            assert editable["mock"] is True
            assert editable["openai"] is False and editable["scripted"] is False
            written = await c.call(
                "modelProvider/config/write",
                {
                    "settings": {
                        "type": "customGateway",
                        "name": "My gateway",
                        "baseUrl": gateway.base_url,
                        "envKey": "GW_KEY",
                    }
                },
            )
            provider = written["provider"]
            assert provider["name"] == "My gateway" and provider["canEdit"] is True
            assert provider["settings"] == {
                "type": "customGateway",
                "auth": {"mode": "environmentVariable", "envKey": "GW_KEY"},
            }
            pid = provider["id"]
            listed = await c.call("modelProvider/list", {})
            assert pid in [p["id"] for p in listed["data"]]
            tid = await start_thread(c, home, modelProvider=pid, model="gw-model")
            await run_turn(c, tid, "hello")
            assert (await completed_turn(c))["status"] == "completed"
            assert gateway.requests[-1].header("authorization") == "Bearer sk-gw"
            # Editing: only the fields sent change; null clears the key variable.
            edited = await c.call(
                "modelProvider/config/write",
                {"settings": {"type": "customGateway", "providerId": pid, "envKey": None}},
            )
            assert edited["provider"]["settings"]["auth"] == {"mode": "none"}
            assert edited["provider"]["name"] == "My gateway"
            refused = await c.request(
                "modelProvider/config/write",
                {"settings": {"type": "bedrock", "providerId": "amazon-bedrock"}},
            )
            assert refused["error"]["code"] == -32600
            caps = await c.call("modelProvider/capabilities/read", {})
            assert caps == {"imageGeneration": False, "webSearch": False}
    table = tomllib.loads((home / "config.toml").read_text())["model_providers"][pid]
    assert table == {"wire_api": "responses", "name": "My gateway", "base_url": gateway.base_url}


async def test_feature_enablement_reaches_new_threads(
    transport: str, home: Path, model: Any
) -> None:
    write_config(home, model.base_url)
    model.add(mm.sse_text("with shell"), mm.sse_text("without shell"))
    async with open_client(transport, home, env=ENV) as c:
        listed = await c.call("experimentalFeature/list", {})
        shell = next(f for f in listed["data"] if f["name"] == "shell_tool")
        assert shell["enabled"] is True and shell["defaultEnabled"] is True
        tid = await start_thread(c, home)
        await run_turn(c, tid, "one")
        await completed_turn(c)
        set_reply = await c.call(
            "experimentalFeature/enablement/set", {"enablement": {"shell_tool": False}}
        )
        assert set_reply == {"enablement": {"shell_tool": False}}
        listed = await c.call("experimentalFeature/list", {})
        assert next(f for f in listed["data"] if f["name"] == "shell_tool")["enabled"] is False
        tid2 = await start_thread(c, home)
        await run_turn(c, tid2, "two")
        await completed_turn(c)
        unknown = await c.request(
            "experimentalFeature/enablement/set", {"enablement": {"no_such_feature": True}}
        )
        assert unknown["error"]["code"] == -32600
    first, second = model.requests
    assert any("shell" in t.get("name", "") for t in first.body.get("tools", []))
    assert not any("shell" in t.get("name", "") for t in second.body.get("tools", []))


async def test_skill_disabled_by_config(transport: str, home: Path, tmp_path: Path) -> None:
    write_config(home, "http://127.0.0.1:9")
    skill = home / "skills" / "demo" / "SKILL.md"
    skill.parent.mkdir(parents=True)
    skill.write_text("---\nname: demo\ndescription: a demo\n---\nbody\n", encoding="utf-8")
    cwd = tmp_path / "work"
    cwd.mkdir()
    env = {**ENV, "HOME": str(tmp_path)}
    async with open_client(transport, home, env=env) as c:

        async def enabled() -> bool:
            listed = await c.call("skills/list", {"cwds": [str(cwd)]})
            demo = [s for s in listed["data"][0]["skills"] if s["name"] == "demo"]
            return bool(demo[0]["enabled"])

        assert await enabled() is True
        path = str(skill.resolve())
        reply = await c.call("skills/config/write", {"path": path, "enabled": False})
        assert reply == {"effectiveEnabled": False}
        assert await enabled() is False
        entries = tomllib.loads((home / "config.toml").read_text())["skills"]["config"]
        assert entries == [{"path": path, "enabled": False}]
        await c.call("skills/config/write", {"path": path, "enabled": True})
        assert await enabled() is True
        bad = await c.request("skills/config/write", {"enabled": False})
        assert bad["error"]["code"] == -32600
    assert "skills" not in tomllib.loads((home / "config.toml").read_text())


async def test_override_answers_ok_overridden(transport: str, home: Path, model: Any) -> None:
    write_config(home, model.base_url)
    async with open_client(transport, home, env=ENV, overrides=["model=from-flag"]) as c:
        result = (await write(c, "model", "from-file"))["result"]
        assert result["status"] == "okOverridden"
        meta = result["overriddenMetadata"]
        assert meta["overridingLayer"]["name"] == {"type": "sessionFlags"}
        assert meta["effectiveValue"] == "from-flag"
        assert (await c.call("config/read", {}))["config"]["model"] == "from-flag"
    assert tomllib.loads((home / "config.toml").read_text())["model"] == "from-file"
