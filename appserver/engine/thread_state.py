"""The in-memory state of a loaded thread and of its running turn.

Owns ``ThreadSettings`` (what a turn runs with; ``turn/start`` overrides persist here),
``ActiveTurn`` and ``LoadedThread`` (their wire views are in ``engine.views``). It must never
do I/O except through the thread's ``RolloutWriter``, and never send messages.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from appserver.engine.thread_config import ToolSwitches
from appserver.protocol.version import PROTOCOL_VERSION
from appserver.store.rollout import RolloutWriter


@dataclass(frozen=True)
class ThreadSettings:
    model: str
    provider: str
    cwd: str
    approval_policy: str
    sandbox_policy: dict[str, Any]
    effort: str | None = None
    summary: str | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    # From the thread's ``config`` map (not persisted, as in Codex: see ``thread_config``).
    tools: ToolSwitches = field(default_factory=ToolSwitches)

    def with_overrides(self, **changes: Any) -> ThreadSettings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_context(self, turn_id: str) -> dict[str, Any]:
        return {
            "turn_id": turn_id,
            "cwd": self.cwd,
            "model": self.model,
            "model_provider": self.provider,
            "approval_policy": self.approval_policy,
            "sandbox_policy": self.sandbox_policy,
            "effort": self.effort,
            "summary": self.summary,
        }


def now_s() -> int:
    return int(time.time())


def now_ms() -> int:
    return int(time.time() * 1000)


# What a turn does: a regular one talks with the model and runs tools; a compaction one only
# replaces the model history with a summary (it cannot be steered).
TurnKind = Literal["regular", "compact"]


@dataclass
class ActiveTurn:
    id: str
    started_at: int
    started_ms: int
    kind: TurnKind = "regular"
    task: asyncio.Task[None] | None = None
    steer_inputs: list[list[dict[str, Any]]] = field(default_factory=list)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    # turn/completed waits on this so an interrupt's response goes out first (spec §4.5.9).
    may_complete: asyncio.Event = field(default_factory=asyncio.Event)
    interrupt_requested: bool = False
    # The turn's last completed agentMessage item: the summary a finished turn carries.
    last_agent_item: dict[str, Any] | None = None
    diff_changes: list[Any] = field(default_factory=list)
    # turn/start outputSchema: the model answers this turn as JSON of this schema.
    output_schema: dict[str, Any] | None = None

    @property
    def last_agent_message(self) -> str | None:
        item = self.last_agent_item
        return None if item is None else str(item["text"])


@dataclass
class LoadedThread:
    id: str
    created_at: int
    settings: ThreadSettings
    path: Path | None
    ephemeral: bool = False
    forked_from_id: str | None = None
    name: str | None = None
    preview: str = ""
    git_info: dict[str, Any] | None = None
    source: str = "vscode"
    cli_version: str = PROTOCOL_VERSION
    updated_at: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    writer: RolloutWriter | None = None
    active_turn: ActiveTurn | None = None
    waiting_flags: list[str] = field(default_factory=list)
    system_error: bool = False
    approved_commands: set[str] = field(default_factory=set)
    # Execpolicy amendments accepted this session: a plain command starting with one of these
    # word prefixes runs without asking (``bash_parse.simple_command_words``).
    approved_prefixes: set[tuple[str, ...]] = field(default_factory=set)
    patches_approved_for_session: bool = False
    token_total: dict[str, int] = field(default_factory=dict)
    unload_handle: asyncio.TimerHandle | None = None

    @property
    def materialized(self) -> bool:
        return self.writer is not None and self.writer.materialized

    def session_meta(self, originator: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.id,
            "timestamp": None,
            "cwd": self.settings.cwd,
            "originator": originator,
            "cli_version": self.cli_version,
            "source": self.source,
            "model_provider": self.settings.provider,
            "model": self.settings.model,
            "forked_from_id": self.forked_from_id,
            "name": self.name,
            "ephemeral": False,
            "git_info": self.git_info,
            "created_at": self.created_at,
            "approval_policy": self.settings.approval_policy,
            "sandbox_policy": self.settings.sandbox_policy,
        }
