"""``thread/start.dynamicTools`` checked for the wire: the engine's ``client_tools.parse``,
its complaint turned into the client's error (-32600).

Owns only that translation; it must never keep tools or run them.
"""

from __future__ import annotations

from typing import Any

from appserver.engine import client_tools
from appserver.engine.tool_specs import TOOLS
from appserver.protocol.errors import invalid_request

_BUILT_IN = frozenset(str(tool["name"]) for tool in TOOLS)


def client_tool_specs(raw: list[Any] | None) -> list[dict[str, Any]]:
    try:
        return client_tools.parse(raw, reserved=_BUILT_IN)
    except ValueError as exc:
        raise invalid_request(f"Invalid request: {exc}") from None
