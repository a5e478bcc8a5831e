"""Handshake, envelope and error replies: the same body over all three transports, and over
the Unix socket (``--listen unix://PATH``).

Each case mirrors a row of the reference server's observed behaviour (real-peer.md §3.3).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from appserver.server.app import App
from appserver.server.config import LoadedConfig
from appserver.tools.coverage import stable_methods
from tests.harness import SOCKET_TRANSPORTS, open_client

INVALID_REQUEST = -32600


@pytest.fixture(params=SOCKET_TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def test_initialize_reports_user_agent_and_home(transport: str, home: Path) -> None:
    async with open_client(transport, home, initialize=False) as c:
        reply = await c.request(
            "initialize", {"clientInfo": {"name": "my_client", "title": None, "version": "9.8"}}
        )
    result = reply["result"]
    assert re.match(
        r"^my_client/\d+\.\d+\.\d+ \(\S+ [^;]+; \S+\) .*\(my_client; 9\.8\)$", result["userAgent"]
    ), result["userAgent"]
    version = result["userAgent"].split(" ")[0].split("/")[1]
    assert tuple(int(x) for x in version.split(".")) >= (0, 151, 0)
    assert result["codexHome"] == str(home.resolve())
    assert result["platformFamily"] == "unix"
    assert result["platformOs"] == "linux"
    assert "jsonrpc" not in reply


async def test_request_before_initialize_is_refused(transport: str, home: Path) -> None:
    async with open_client(transport, home, initialize=False) as c:
        reply = await c.request("model/list", {}, request_id=100)
        assert reply == {
            "error": {"code": INVALID_REQUEST, "message": "Not initialized"},
            "id": 100,
        }


async def test_initialize_param_errors(transport: str, home: Path) -> None:
    async with open_client(transport, home, initialize=False) as c:
        reply = await c.request("initialize", {})
        assert reply["error"] == {
            "code": INVALID_REQUEST,
            "message": "Invalid request: missing field `clientInfo`",
        }
        reply = await c.request("initialize", omit_params=True)
        assert reply["error"]["message"] == "Invalid request: missing field `params`"
        bad = await c.request("initialize", {"clientInfo": {"name": "a\nb", "version": "1"}})
        assert bad["error"]["code"] == INVALID_REQUEST
        assert bad["error"]["message"].startswith("Invalid clientInfo.name")
        # none of the failures initialized the connection
        assert (await c.request("model/list", {}))["error"]["message"] == "Not initialized"


async def test_second_initialize_is_refused(transport: str, home: Path) -> None:
    async with open_client(transport, home) as c:
        reply = await c.request("initialize", {"clientInfo": {"name": "x", "version": "1"}})
        assert reply["error"] == {"code": INVALID_REQUEST, "message": "Already initialized"}


async def test_unknown_method(transport: str, home: Path) -> None:
    async with open_client(transport, home) as c:
        reply = await c.request("no/such/method", {})
        assert reply["error"]["code"] == INVALID_REQUEST
        assert reply["error"]["message"].startswith(
            "Invalid request: unknown variant `no/such/method`, expected one of `initialize`"
        )


async def test_every_stable_method_we_lack_gets_the_unknown_method_reply(
    transport: str, home: Path
) -> None:
    registry = App(LoadedConfig(home=home, path=home / "config.toml", values={})).registry
    missing = [m for m in stable_methods() if m not in registry and m != "initialize"]
    assert missing  # the coverage table lists them as "not yet"
    async with open_client(transport, home) as c:
        for method in missing:
            reply = await c.request(method, {})
            assert reply["error"]["code"] == INVALID_REQUEST, reply
            assert reply["error"]["message"].startswith(
                f"Invalid request: unknown variant `{method}`, expected one of"
            ), reply


async def test_bad_params(transport: str, home: Path) -> None:
    async with open_client(transport, home) as c:
        wrong_type = await c.request("model/list", {"limit": "ten"})
        assert wrong_type["error"]["code"] == INVALID_REQUEST
        assert wrong_type["error"]["message"].startswith(
            'Invalid request: invalid type: string "ten", expected an integer'
        )
        for params in (None,):
            reply = await c.request("model/list", params, omit_params=False)
            assert "result" in reply  # {} sent for None by the harness
        missing = await c.request("model/list", omit_params=True)
        assert missing["error"]["message"] == "Invalid request: missing field `params`"
        null = await c.request("config/read", request_id=7, omit_params=True)
        assert null["error"]["code"] == INVALID_REQUEST
        await c.send({"id": 8, "method": "account/read", "params": None})
        assert (await c.reply_to(8))["error"][
            "message"
        ] == "Invalid request: missing field `params`"
        await c.send({"id": 9, "method": "account/read", "params": []})
        array = await c.reply_to(9)
        assert array["error"]["message"].startswith("Invalid request: invalid type: sequence")
        extra = await c.request("account/read", {"bogusField": 1})
        assert "result" in extra


async def test_request_ids_are_echoed_with_their_type(transport: str, home: Path) -> None:
    async with open_client(transport, home) as c:
        s = await c.request("account/read", {}, request_id="abc-string-id")
        assert s["id"] == "abc-string-id"
        i = await c.request("account/read", {}, request_id=42)
        assert i["id"] == 42 and type(i["id"]) is int
        big = await c.request("account/read", {}, request_id=2**63 - 1)
        assert big["id"] == 2**63 - 1
        await c.send({"jsonrpc": "2.0", "id": 43, "method": "account/read", "params": {}})
        reply = await c.reply_to(43)
        assert "jsonrpc" not in reply and "result" in reply


async def test_garbage_then_valid_request_is_answered(transport: str, home: Path) -> None:
    async with open_client(transport, home) as c:
        for raw in [
            b'{"method": "initialize", "id": 101, "params": ',
            b"[1,2,3]",
            b"42",
            b'"hello"',
            b"   ",
            b'{"id": 1123, "params": {}}',
            b'{"method": "account/read", "id": null, "params": {}}',
            b'{"method": "account/read", "id": 1.5, "params": {}}',
            b'{"method": "account/read", "id": true, "params": {}}',
            b'{"id": 9999, "result": {}}',
            b'{"method": "no/such/notification", "params": {}}',
            b"\xff\xfe not utf8",
        ]:
            await c.send_raw(raw)
        reply = await c.request("account/read", {}, request_id=114)
        assert "result" in reply
        # nothing but the valid reply (and connection-level notifications) came back
        replies = [m for m in c.seen if "id" in m and "method" not in m]
        assert [m["id"] for m in replies] == [1, 114]  # initialize, then the valid request


async def test_experimental_method_is_gated(transport: str, home: Path) -> None:
    async with open_client(transport, home) as c:
        reply = await c.request("mock/experimentalMethod", {"value": 1})
        assert reply["error"] == {
            "code": INVALID_REQUEST,
            "message": "mock/experimentalMethod requires experimentalApi capability",
        }
    async with open_client(transport, home, capabilities={"experimentalApi": True}) as c:
        assert await c.call("mock/experimentalMethod", {"value": {"a": [1]}}) == {
            "echoed": {"a": [1]}
        }
        assert await c.call("mock/experimentalMethod", {}) == {"echoed": None}


async def test_config_warning_and_opt_out(transport: str, home: Path) -> None:
    # With no model configured the server falls back to the scripted provider and says so.
    async with open_client(transport, home) as c:
        warning = await c.notification("configWarning")
        assert "scripted" in warning["params"]["summary"]
    async with open_client(
        transport, home, capabilities={"optOutNotificationMethods": ["configWarning"]}
    ) as c:
        await c.call("account/read", {})
        assert not [m for m in c.seen if m.get("method") == "configWarning"]
