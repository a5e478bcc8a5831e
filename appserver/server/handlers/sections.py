"""Thread sections and attachments: ``threadSection/list|create|update|delete``,
``thread/section/move``, ``thread/attachment/add|list|remove`` and
``thread/attachmentOwner/list``.

Owns these handlers and their registration, the ids of new sections and attachments
(UUIDv7), and the ``thread/section/changed`` and ``thread/attachment/updated`` broadcasts. The
rows live in the store (``store.sections``, handed over at assembly); a ``Thread``'s
``section`` fields are ``server.views``'s. A thread is known when it is loaded or indexed; an
unknown thread or section is -32600. It must never touch a rollout file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from appserver.core.processor import RequestContext
from appserver.engine.ids import uuid7
from appserver.engine.manager import ThreadManager
from appserver.protocol.errors import invalid_request
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.protocol.section_params import (
    PageParams,
    ThreadAttachmentAddParams,
    ThreadAttachmentListParams,
    ThreadAttachmentOwnerListParams,
    ThreadAttachmentRemoveParams,
    ThreadSectionCreateParams,
    ThreadSectionDeleteParams,
    ThreadSectionListParams,
    ThreadSectionMoveParams,
    ThreadSectionUpdateParams,
)
from appserver.store.sections import (
    Attachment,
    SectionStore,
    decode_offset,
    encode_offset,
    page_size,
)

if TYPE_CHECKING:
    from appserver.protocol.wire_types import (
        ThreadAttachmentAddResponse,
        ThreadAttachmentListResponse,
        ThreadAttachmentOperation,
        ThreadAttachmentOwnerListResponse,
        ThreadAttachmentRemoveResponse,
        ThreadAttachmentUpdatedNotification,
        ThreadSectionCreateResponse,
        ThreadSectionDeleteResponse,
        ThreadSectionListResponse,
        ThreadSectionMoveResponse,
        ThreadSectionUpdateResponse,
    )

SECTION_CHANGED = "thread/section/changed"
ATTACHMENT_UPDATED = "thread/attachment/updated"
MAX_NAME = 200


def _offset(kind: str, p: PageParams) -> int:
    if p.cursor is None:
        return 0
    try:
        return decode_offset(kind, p.cursor)
    except ValueError as exc:
        raise invalid_request(str(exc)) from None


def _next(kind: str, offset: int, count: int, more: bool) -> str | None:
    return encode_offset(kind, offset + count) if more else None


def _name(name: str) -> str:
    name = name.strip()
    if not name:
        raise invalid_request("Invalid request: a section name must not be empty")
    if len(name) > MAX_NAME:
        raise invalid_request(f"Invalid request: a section name is at most {MAX_NAME} characters")
    return name


class SectionHandlers:
    def __init__(self, manager: ThreadManager, sections: SectionStore) -> None:
        self.manager = manager
        self.sections = sections

    def register(self, r: MethodRegistry) -> None:
        i, c, t = Scope.INLINE, Scope.CONCURRENT, Scope.THREAD
        r.register(
            "threadSection/list",
            ThreadSectionListParams,
            self.section_list,
            result="ThreadSectionListResponse",
            scope=i,
        )
        r.register(
            "threadSection/create",
            ThreadSectionCreateParams,
            self.create,
            result="ThreadSectionCreateResponse",
            scope=c,
        )
        r.register(
            "threadSection/update",
            ThreadSectionUpdateParams,
            self.update,
            result="ThreadSectionUpdateResponse",
            scope=c,
        )
        r.register(
            "threadSection/delete",
            ThreadSectionDeleteParams,
            self.delete,
            result="ThreadSectionDeleteResponse",
            scope=c,
        )
        r.register(
            "thread/section/move",
            ThreadSectionMoveParams,
            self.move,
            result="ThreadSectionMoveResponse",
            scope=t,
        )
        r.register(
            "thread/attachment/add",
            ThreadAttachmentAddParams,
            self.attach,
            result="ThreadAttachmentAddResponse",
            scope=t,
        )
        r.register(
            "thread/attachment/list",
            ThreadAttachmentListParams,
            self.attachment_list,
            result="ThreadAttachmentListResponse",
            scope=i,
        )
        r.register(
            "thread/attachment/remove",
            ThreadAttachmentRemoveParams,
            self.detach,
            result="ThreadAttachmentRemoveResponse",
            scope=t,
        )
        r.register(
            "thread/attachmentOwner/list",
            ThreadAttachmentOwnerListParams,
            self.owners,
            result="ThreadAttachmentOwnerListResponse",
            scope=i,
        )

    def _require_thread(self, thread_id: str) -> None:
        if not self.manager.exists(thread_id):
            raise invalid_request(f"thread not found: {thread_id}")

    # -- sections ---------------------------------------------------------------------------
    async def section_list(
        self, ctx: RequestContext, p: ThreadSectionListParams
    ) -> ThreadSectionListResponse:
        offset = _offset("sections", p)
        found, more = self.sections.sections(offset, page_size(p.limit))
        return {
            "data": [s.wire() for s in found],
            "nextCursor": _next("sections", offset, len(found), more),
        }

    async def create(
        self, ctx: RequestContext, p: ThreadSectionCreateParams
    ) -> ThreadSectionCreateResponse:
        appearance = p.appearance.model_dump() if p.appearance is not None else None
        section = self.sections.create(uuid7(), _name(p.name), appearance)
        return {"section": section.wire()}

    async def update(
        self, ctx: RequestContext, p: ThreadSectionUpdateParams
    ) -> ThreadSectionUpdateResponse:
        keep = "appearance" not in p.model_fields_set
        appearance = p.appearance.model_dump() if p.appearance is not None else None
        try:
            section = self.sections.update(p.section_id, _name(p.name), appearance, keep=keep)
        except KeyError:
            raise invalid_request(f"section not found: {p.section_id}") from None
        return {"section": section.wire()}

    async def delete(
        self, ctx: RequestContext, p: ThreadSectionDeleteParams
    ) -> ThreadSectionDeleteResponse:
        try:
            members = self.sections.delete(p.section_id)
        except KeyError:
            raise invalid_request(f"section not found: {p.section_id}") from None
        for thread_id in members:
            await ctx.broadcast(SECTION_CHANGED, {"threadId": thread_id, "sectionId": None})
        return {}

    async def move(
        self, ctx: RequestContext, p: ThreadSectionMoveParams
    ) -> ThreadSectionMoveResponse:
        self._require_thread(p.thread_id)
        try:
            self.sections.move(p.thread_id, p.section_id, p.before_thread_id)
        except KeyError:
            raise invalid_request(f"section not found: {p.section_id}") from None
        except ValueError as exc:
            raise invalid_request(f"Invalid request: {exc}") from None
        await ctx.broadcast(SECTION_CHANGED, {"threadId": p.thread_id, "sectionId": p.section_id})
        return {}

    # -- attachments ------------------------------------------------------------------------
    @staticmethod
    async def _announce(
        ctx: RequestContext, found: Attachment, operation: ThreadAttachmentOperation
    ) -> None:
        params: ThreadAttachmentUpdatedNotification = {
            "threadId": found.thread_id,
            "attachmentId": found.id,
            "attachmentType": found.attachment_type,
            "identityKey": found.identity_key,
            "operation": operation,
        }
        await ctx.broadcast(ATTACHMENT_UPDATED, cast("dict[str, Any]", params))

    async def attach(
        self, ctx: RequestContext, p: ThreadAttachmentAddParams
    ) -> ThreadAttachmentAddResponse:
        self._require_thread(p.thread_id)
        found, created = self.sections.add_attachment(
            uuid7(), p.thread_id, p.attachment_type, p.identity_key, p.payload
        )
        if created:
            await self._announce(ctx, found, "created")
        return {"attachment": found.wire(), "outcome": "created" if created else "existing"}

    async def attachment_list(
        self, ctx: RequestContext, p: ThreadAttachmentListParams
    ) -> ThreadAttachmentListResponse:
        self._require_thread(p.thread_id)
        offset = _offset("attachments", p)
        found, more = self.sections.attachments(p.thread_id, offset, page_size(p.limit))
        return {
            "data": [a.wire() for a in found],
            "nextCursor": _next("attachments", offset, len(found), more),
        }

    async def detach(
        self, ctx: RequestContext, p: ThreadAttachmentRemoveParams
    ) -> ThreadAttachmentRemoveResponse:
        self._require_thread(p.thread_id)
        found = self.sections.remove_attachment(p.thread_id, p.attachment_type, p.identity_key)
        # Removing what is not there is a success with nothing to announce (a retry is safe).
        if found is not None:
            await self._announce(ctx, found, "deleted")
        return {}

    async def owners(
        self, ctx: RequestContext, p: ThreadAttachmentOwnerListParams
    ) -> ThreadAttachmentOwnerListResponse:
        offset = _offset("owners", p)
        found, more = self.sections.owners(
            p.attachment_type, p.identity_key, p.archived, offset, page_size(p.limit)
        )
        return {
            "data": [{"threadId": t, "archived": archived} for t, archived in found],
            "nextCursor": _next("owners", offset, len(found), more),
        }
