"""Params models of thread sections and thread attachments: ``threadSection/list|create|
update|delete``, ``thread/section/move``, ``thread/attachment/add|list|remove`` and
``thread/attachmentOwner/list``. Models only: no behaviour. ``appearance`` omitted and
``appearance: null`` differ (keep it, clear it): the handler reads ``model_fields_set``.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from appserver.protocol.base import WireModel


class SectionAppearance(WireModel):
    color: str | None = None
    icon: str | None = None


class PageParams(WireModel):
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=0)


class ThreadSectionListParams(PageParams):
    pass


class ThreadSectionCreateParams(WireModel):
    name: str
    appearance: SectionAppearance | None = None


class ThreadSectionUpdateParams(WireModel):
    section_id: str
    name: str
    appearance: SectionAppearance | None = None


class ThreadSectionDeleteParams(WireModel):
    section_id: str


class ThreadSectionMoveParams(WireModel):
    thread_id: str
    section_id: str | None
    before_thread_id: str | None = None


class ThreadAttachmentAddParams(WireModel):
    thread_id: str
    attachment_type: str
    identity_key: str
    payload: Any


class ThreadAttachmentListParams(PageParams):
    thread_id: str


class ThreadAttachmentRemoveParams(WireModel):
    thread_id: str
    attachment_type: str
    identity_key: str


class ThreadAttachmentOwnerListParams(PageParams):
    attachment_type: str
    identity_key: str
    archived: bool | None = None
