"""Params models of the methods the stock Codex clients (the TUI, codex-acp) call at startup
and for history paging, beyond the thread and turn core.

Owns the models of ``configRequirements/read``, ``permissionProfile/list``, ``hooks/list``,
``plugin/installed``, ``account/bedrock/checkGovCloudRequirements``,
``collaborationMode/list``, ``thread/backgroundTerminals/list``, ``thread/goal/get``,
``thread/readState/update`` and ``thread/items/list``. Models only: no behaviour.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from appserver.protocol.base import WireModel


class NoParams(WireModel):
    """A method whose params are ``null`` or ``{}``."""


class PermissionProfileListParams(WireModel):
    cursor: str | None = None
    cwd: str | None = None
    limit: int | None = Field(default=None, ge=0)


class HooksListParams(WireModel):
    cwds: list[str] | None = None
    thread_id: str | None = None


class PluginInstalledParams(WireModel):
    cwds: list[str] | None = None
    install_suggestion_plugin_names: list[str] | None = None


class ThreadPageParams(WireModel):
    """``thread/backgroundTerminals/list``: a thread and the usual paging."""

    thread_id: str
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=0)


class ReadStateOperation(WireModel):
    type: Literal["read", "unread"]


class ThreadReadStateUpdateParams(WireModel):
    thread_id: str
    operation: ReadStateOperation
    expected_revision: str | None = None


class ItemAnchor(WireModel):
    """An exclusive item position within ``turnId`` (the schema's ``ThreadItemsListAnchor``)."""

    type: Literal["item"]
    item_id: str


class ThreadItemsListParams(WireModel):
    thread_id: str
    turn_id: str | None = None
    cursor: str | ItemAnchor | None = None
    limit: int | None = Field(default=None, ge=0)
    sort_direction: Literal["asc", "desc"] | None = None
