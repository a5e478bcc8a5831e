"""``fs/readFile``, ``fs/writeFile``, ``fs/createDirectory``, ``fs/getMetadata``,
``fs/readDirectory``, ``fs/remove``, ``fs/copy``, ``fs/watch``, ``fs/unwatch``.

Owns these handlers and their registration: each asks the boundary for the connection's
access, checks the path's form (-32600), and runs the operation (:mod:`appserver.host.fs_ops`)
in a worker thread so the dispatch loop never waits on the disk. ``fs/changed`` goes to the
watching connection only. It must never touch a path itself.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
from typing import TYPE_CHECKING

from appserver.core.outgoing import OutgoingMessageSender
from appserver.core.processor import RequestContext
from appserver.host import fs_ops
from appserver.host.boundary import Access, Boundary, absolute_path
from appserver.host.watch import Watches
from appserver.protocol.errors import RpcError, invalid_request
from appserver.protocol.host_params import (
    FsCopyParams,
    FsCreateDirectoryParams,
    FsGetMetadataParams,
    FsReadDirectoryParams,
    FsReadFileParams,
    FsRemoveParams,
    FsUnwatchParams,
    FsWatchParams,
    FsWriteFileParams,
)
from appserver.protocol.registry import MethodRegistry

if TYPE_CHECKING:
    from appserver.protocol.wire_types import (
        FsCopyResponse,
        FsCreateDirectoryResponse,
        FsGetMetadataResponse,
        FsReadDirectoryResponse,
        FsReadFileResponse,
        FsRemoveResponse,
        FsUnwatchResponse,
        FsWatchResponse,
        FsWriteFileResponse,
    )

CHANGED = "fs/changed"


def decode_base64(text: str, field: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_request(f"Invalid request: `{field}` is not valid base64") from None


class HostFsHandlers:
    def __init__(self, boundary: Boundary, sender: OutgoingMessageSender) -> None:
        self.boundary = boundary
        self.sender = sender
        self.watches = Watches(self._changed)

    def register(self, registry: MethodRegistry) -> None:
        registry.register(
            "fs/readFile", FsReadFileParams, self.read_file, result="FsReadFileResponse"
        )
        registry.register(
            "fs/writeFile", FsWriteFileParams, self.write_file, result="FsWriteFileResponse"
        )
        registry.register(
            "fs/createDirectory",
            FsCreateDirectoryParams,
            self.create_directory,
            result="FsCreateDirectoryResponse",
        )
        registry.register(
            "fs/getMetadata", FsGetMetadataParams, self.get_metadata, result="FsGetMetadataResponse"
        )
        registry.register(
            "fs/readDirectory",
            FsReadDirectoryParams,
            self.read_directory,
            result="FsReadDirectoryResponse",
        )
        registry.register("fs/remove", FsRemoveParams, self.remove, result="FsRemoveResponse")
        registry.register("fs/copy", FsCopyParams, self.copy, result="FsCopyResponse")
        registry.register("fs/watch", FsWatchParams, self.watch, result="FsWatchResponse")
        registry.register("fs/unwatch", FsUnwatchParams, self.unwatch, result="FsUnwatchResponse")

    def _access(self, ctx: RequestContext) -> Access:
        return self.boundary.access(ctx.connection)

    async def read_file(self, ctx: RequestContext, p: FsReadFileParams) -> FsReadFileResponse:
        access, path = self._access(ctx), absolute_path(p.path)
        data = await asyncio.to_thread(fs_ops.read_file, access, path)
        return {"dataBase64": base64.b64encode(data).decode("ascii")}

    async def write_file(self, ctx: RequestContext, p: FsWriteFileParams) -> FsWriteFileResponse:
        access, path = self._access(ctx), absolute_path(p.path)
        data = decode_base64(p.data_base64, "dataBase64")
        await asyncio.to_thread(fs_ops.write_file, access, path, data)
        return {}

    async def create_directory(
        self, ctx: RequestContext, p: FsCreateDirectoryParams
    ) -> FsCreateDirectoryResponse:
        access, path = self._access(ctx), absolute_path(p.path)
        recursive = True if p.recursive is None else p.recursive
        await asyncio.to_thread(fs_ops.create_directory, access, path, recursive)
        return {}

    async def get_metadata(
        self, ctx: RequestContext, p: FsGetMetadataParams
    ) -> FsGetMetadataResponse:
        access, path = self._access(ctx), absolute_path(p.path)
        return await asyncio.to_thread(fs_ops.get_metadata, access, path)

    async def read_directory(
        self, ctx: RequestContext, p: FsReadDirectoryParams
    ) -> FsReadDirectoryResponse:
        access, path = self._access(ctx), absolute_path(p.path)
        return {"entries": await asyncio.to_thread(fs_ops.read_directory, access, path)}

    async def remove(self, ctx: RequestContext, p: FsRemoveParams) -> FsRemoveResponse:
        access, path = self._access(ctx), absolute_path(p.path)
        recursive = True if p.recursive is None else p.recursive
        force = True if p.force is None else p.force
        await asyncio.to_thread(fs_ops.remove, access, path, recursive, force)
        return {}

    async def copy(self, ctx: RequestContext, p: FsCopyParams) -> FsCopyResponse:
        access = self._access(ctx)
        source = absolute_path(p.source_path)
        destination = absolute_path(p.destination_path)
        await asyncio.to_thread(fs_ops.copy, access, source, destination, p.recursive)
        return {}

    async def watch(self, ctx: RequestContext, p: FsWatchParams) -> FsWatchResponse:
        access, path = self._access(ctx), absolute_path(p.path)
        real = access.resolve(path)
        try:
            await asyncio.to_thread(os.stat, real)
            self.watches.watch(ctx.connection.id, p.watch_id, real)
        except RpcError:
            raise
        except OSError as exc:
            raise fs_ops.os_error(exc) from None
        return {"path": real}

    async def unwatch(self, ctx: RequestContext, p: FsUnwatchParams) -> FsUnwatchResponse:
        self.watches.unwatch(ctx.connection.id, p.watch_id)
        return {}

    async def _changed(self, conn_id: int, watch_id: str, paths: list[str]) -> None:
        await self.sender.notify(conn_id, CHANGED, {"watchId": watch_id, "changedPaths": paths})

    def connection_closed(self, conn_id: int) -> None:
        self.watches.drop_connection(conn_id)

    def close(self) -> None:
        self.watches.close()
