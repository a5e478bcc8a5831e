"""Params models of the skills methods: ``skills/list`` and ``skills/extraRoots/set``.

Models only (schema: ``SkillsListParams``, ``SkillsExtraRootsSetParams``); the paths are
checked to be absolute by the handler, which answers -32600 otherwise.
"""

from __future__ import annotations

from appserver.protocol.base import WireModel


class SkillsListParams(WireModel):
    cwds: list[str] | None = None
    force_reload: bool | None = None


class SkillsExtraRootsSetParams(WireModel):
    extra_roots: list[str]
