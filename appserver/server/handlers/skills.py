"""``skills/list`` and ``skills/extraRoots/set``.

Owns these two handlers and their registration, and the ``skills/changed`` broadcast a
``skills/list`` scan triggers when it finds a cwd's skills changed since the last scan (turn
starts do the same, in the engine). Scans run in a worker thread so the dispatch loop never
waits on the disk. It must never fail a request for what is on disk: a bad ``SKILL.md`` is
an entry in ``errors``; only a relative path in the params is refused (-32600).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, cast

from appserver.core.outgoing import OutgoingMessageSender
from appserver.core.processor import RequestContext
from appserver.engine.skills.catalog import SkillsCatalog, SkillSet
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry
from appserver.protocol.skills_params import SkillsExtraRootsSetParams, SkillsListParams

if TYPE_CHECKING:
    from appserver.protocol.wire_types import (
        SkillsExtraRootsSetResponse,
        SkillsListEntry,
        SkillsListResponse,
    )

CHANGED = "skills/changed"


def _absolute(path: str, field: str) -> Path:
    if not path or not os.path.isabs(path):
        raise invalid_request(f"Invalid request: `{field}` must be an absolute path: {path!r}")
    return Path(os.path.normpath(path))


class SkillsHandlers:
    def __init__(self, catalog: SkillsCatalog, sender: OutgoingMessageSender) -> None:
        self.catalog = catalog
        self.sender = sender

    def register(self, registry: MethodRegistry) -> None:
        registry.register(
            "skills/list", SkillsListParams, self.skills_list, result="SkillsListResponse"
        )
        registry.register(
            "skills/extraRoots/set",
            SkillsExtraRootsSetParams,
            self.extra_roots_set,
            result="SkillsExtraRootsSetResponse",
        )

    async def skills_list(self, ctx: RequestContext, p: SkillsListParams) -> SkillsListResponse:
        # No cwds: the server's own working directory, as the reference's session cwd.
        cwds = p.cwds or [os.getcwd()]
        paths = [_absolute(c, "cwds") for c in cwds]
        force = bool(p.force_reload)

        def scan() -> tuple[list[SkillSet], bool]:
            results = [self.catalog.scan(path, force=force) for path in paths]
            return [found for found, _ in results], any(changed for _, changed in results)

        sets, changed = await asyncio.to_thread(scan)
        if changed:
            await self.sender.broadcast(CHANGED, {})
        data = [found.wire(cwd) for cwd, found in zip(cwds, sets, strict=True)]
        return {"data": cast("list[SkillsListEntry]", data)}

    async def extra_roots_set(
        self, ctx: RequestContext, p: SkillsExtraRootsSetParams
    ) -> SkillsExtraRootsSetResponse:
        roots = [_absolute(r, "extraRoots") for r in p.extra_roots]
        # The cwds listed before are scanned again at once, so clients hear of the change.
        if self.catalog.set_extra_roots(roots) and await asyncio.to_thread(
            self.catalog.rescan_known
        ):
            await self.sender.broadcast(CHANGED, {})
        return {}
