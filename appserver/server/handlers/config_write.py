"""``config/value/write``, ``config/batchWrite`` and ``skills/config/write``.

Owns these handlers and their registration: each write goes through ``ConfigWriter`` (one at
a time, under one lock, in a worker thread) and, once on disk, is taken by the running server
(``LiveConfig.reload_file``), so ``config/read``, new threads and the next turns see it. A
refused write is -32600 with ``data.config_write_error_code`` (the reference's codes) and
leaves the file untouched. A written key that a ``-c`` override shadows answers
``okOverridden`` with the override's layer and effective value.

It must never answer before the file is renamed into place, or reload a config the writer
refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from appserver.core.outgoing import OutgoingMessageSender
from appserver.core.processor import RequestContext
from appserver.engine.skills.catalog import SkillsCatalog
from appserver.protocol.config_params import (
    ConfigBatchWriteParams,
    ConfigValueWriteParams,
    SkillsConfigWriteParams,
)
from appserver.protocol.errors import RpcError, internal_error, invalid_request
from appserver.protocol.registry import MethodRegistry
from appserver.server.config import LoadedConfig
from appserver.server.config_reload import LiveConfig
from appserver.server.config_write import (
    ERROR_CODE_KEY,
    ConfigWriteError,
    ConfigWriter,
    Edit,
    WriteResult,
    version_of,
)

if TYPE_CHECKING:
    from appserver.protocol.wire_types import ConfigWriteResponse, SkillsConfigWriteResponse

SKILLS_CHANGED = "skills/changed"


def write_error(exc: ConfigWriteError) -> RpcError:
    return invalid_request(exc.message, {ERROR_CODE_KEY: exc.code})


class ConfigWriteService:
    """The writer, the live config and the lock every config write holds."""

    def __init__(self, live: LiveConfig) -> None:
        self.live = live
        self.writer = ConfigWriter(live.config, live.validate)
        self.lock = asyncio.Lock()

    async def write(
        self,
        edits: Sequence[Edit],
        *,
        expected_version: str | None = None,
        file_path: str | None = None,
    ) -> WriteResult:
        async with self.lock:
            try:
                result = await asyncio.to_thread(
                    self.writer.write,
                    edits,
                    expected_version=expected_version,
                    file_path=file_path,
                )
            except ConfigWriteError as exc:
                raise write_error(exc) from None
            except OSError as exc:  # the disk refused the temporary file or the rename
                raise internal_error(f"cannot write {self.writer.path}: {exc.strerror}") from None
            self.live.reload_file(result.values)
            return result

    def current_values(self) -> dict[str, Any]:
        try:
            return self.writer.read()[1]
        except ConfigWriteError as exc:
            raise write_error(exc) from None

    def response(self, result: WriteResult, key_paths: Sequence[str]) -> ConfigWriteResponse:
        cfg = self.live.config
        shadowed = [k for k in key_paths if _overridden(cfg, k)]
        if not shadowed:
            return {
                "status": "ok",
                "version": result.version,
                "filePath": str(result.path.absolute()),
                "overriddenMetadata": None,
            }
        key = shadowed[0]
        overrides = {k: cfg.get(k) for k, origin in cfg.origins.items() if origin == "override"}
        return {
            "status": "okOverridden",
            "version": result.version,
            "filePath": str(result.path.absolute()),
            "overriddenMetadata": {
                "message": f"`{key}` is written, but a -c override on the command line wins",
                "overridingLayer": {
                    "name": {"type": "sessionFlags"},
                    "version": version_of(overrides),
                },
                "effectiveValue": cast(Any, cfg.get(key)),
            },
        }


def _overridden(cfg: LoadedConfig, key_path: str) -> bool:
    dotted = key_path.replace('"', "")
    return any(
        origin == "override"
        and (k == dotted or k.startswith(dotted + ".") or dotted.startswith(k + "."))
        for k, origin in cfg.origins.items()
    )


class ConfigWriteHandlers:
    def __init__(
        self,
        service: ConfigWriteService,
        skills: SkillsCatalog,
        sender: OutgoingMessageSender,
    ) -> None:
        self.service = service
        self.skills = skills
        self.sender = sender
        self._tasks: set[asyncio.Task[None]] = set()
        service.live.listeners.append(self._config_changed)
        self._config_changed(service.live.config)

    def register(self, r: MethodRegistry) -> None:
        r.register(
            "config/value/write",
            ConfigValueWriteParams,
            self.value_write,
            result="ConfigWriteResponse",
        )
        r.register(
            "config/batchWrite",
            ConfigBatchWriteParams,
            self.batch_write,
            result="ConfigWriteResponse",
        )
        r.register(
            "skills/config/write",
            SkillsConfigWriteParams,
            self.skills_write,
            result="SkillsConfigWriteResponse",
        )

    async def value_write(
        self, ctx: RequestContext, p: ConfigValueWriteParams
    ) -> ConfigWriteResponse:
        edit = Edit(p.key_path, p.value, p.merge_strategy)
        result = await self.service.write(
            [edit], expected_version=p.expected_version, file_path=p.file_path
        )
        return self.service.response(result, [p.key_path])

    async def batch_write(
        self, ctx: RequestContext, p: ConfigBatchWriteParams
    ) -> ConfigWriteResponse:
        # Every write reloads the server's own state (providers, defaults for new threads);
        # ``reloadUserConfig`` asks for loaded threads too, which follow provider changes
        # already and keep their session settings (model, effort), as the schema says.
        edits = [Edit(e.key_path, e.value, e.merge_strategy) for e in p.edits]
        result = await self.service.write(
            edits, expected_version=p.expected_version, file_path=p.file_path
        )
        return self.service.response(result, [e.key_path for e in p.edits])

    async def skills_write(
        self, ctx: RequestContext, p: SkillsConfigWriteParams
    ) -> SkillsConfigWriteResponse:
        if (p.path is None) == (p.name is None):
            raise invalid_request("Invalid request: give exactly one of `path` or `name`")
        if p.path is not None and not Path(p.path).is_absolute():
            raise invalid_request(f"Invalid request: `path` must be absolute: {p.path!r}")
        async with self.service.lock:
            entries = _skill_entries(self.service.current_values())
        selector = {"path": p.path} if p.path is not None else {"name": p.name}
        kept = [e for e in entries if not _same_selector(e, selector)]
        # Enabled is the default: only a disabled skill needs an entry.
        new = kept if p.enabled else [*kept, {**selector, "enabled": False}]
        await self.service.write([Edit("skills.config", new or None)])
        return {"effectiveEnabled": p.enabled}

    def _config_changed(self, cfg: LoadedConfig) -> None:
        paths: list[Path] = []
        names: list[str] = []
        for entry in _skill_entries(cfg.values):
            if entry.get("enabled") is not False:
                continue
            if isinstance(entry.get("path"), str):
                paths.append(Path(entry["path"]))
            if isinstance(entry.get("name"), str):
                names.append(entry["name"])
        if not self.skills.set_disabled(paths, names):
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # at startup, before the loop runs: nothing was scanned yet
            return
        task = loop.create_task(self._rescan())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _rescan(self) -> None:
        if await asyncio.to_thread(self.skills.rescan_known):
            await self.sender.broadcast(SKILLS_CHANGED, {})


def _skill_entries(values: dict[str, Any]) -> list[dict[str, Any]]:
    skills = values.get("skills")
    entries = skills.get("config") if isinstance(skills, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _same_selector(entry: dict[str, Any], selector: dict[str, Any]) -> bool:
    return all(entry.get(k) == v for k, v in selector.items()) and (
        ("path" in selector) == ("path" in entry)
    )
