"""The ``collaborationMode`` param of ``turn/start`` (experimental): a mode kind and its
settings. Models only; the modes themselves are ``engine.collaboration``'s.

``Settings`` is snake_case on the wire (``reasoning_effort``, ``developer_instructions``), as
the schema has it, unlike the camelCase of the rest of the protocol.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict

from appserver.protocol.base import WireModel

ReasoningEffort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]


class CollaborationSettings(WireModel):
    model_config = ConfigDict(alias_generator=None)

    model: str | None = None
    reasoning_effort: ReasoningEffort | None = None
    developer_instructions: str | None = None


class CollaborationModeParam(WireModel):
    mode: Literal["plan", "default"]
    settings: CollaborationSettings | None = None
