"""``command/exec``, ``command/exec/write``, ``command/exec/terminate``,
``command/exec/resize``.

Owns these handlers and their registration. Each asks the boundary for the connection's
access (only unrestricted connections run commands) and hands the work to
:class:`appserver.host.exec_sessions.ExecSessions`. ``command/exec`` replies when the process
has exited, after every ``command/exec/outputDelta`` of it (they are sent, in order, to the
same connection before the reply). It must never run a process itself.
"""

from __future__ import annotations

from typing import Any

from appserver.core.outgoing import OutgoingMessageSender
from appserver.core.processor import RequestContext
from appserver.host.boundary import Boundary
from appserver.host.exec_sessions import ExecSessions, require_unrestricted
from appserver.protocol.host_params import (
    CommandExecParams,
    CommandExecResizeParams,
    CommandExecTerminateParams,
    CommandExecWriteParams,
)
from appserver.protocol.registry import MethodRegistry
from appserver.server.handlers.host_fs import decode_base64

OUTPUT_DELTA = "command/exec/outputDelta"


class HostExecHandlers:
    def __init__(
        self, boundary: Boundary, sessions: ExecSessions, sender: OutgoingMessageSender
    ) -> None:
        self.boundary = boundary
        self.sessions = sessions
        self.sender = sender

    def register(self, registry: MethodRegistry) -> None:
        registry.register("command/exec", CommandExecParams, self.exec)
        registry.register("command/exec/write", CommandExecWriteParams, self.write)
        registry.register("command/exec/terminate", CommandExecTerminateParams, self.terminate)
        registry.register("command/exec/resize", CommandExecResizeParams, self.resize)

    def _check(self, ctx: RequestContext) -> None:
        require_unrestricted(self.boundary.access(ctx.connection))

    async def exec(self, ctx: RequestContext, p: CommandExecParams) -> dict[str, Any]:
        self._check(ctx)
        return await self.sessions.run(ctx.connection.id, p)

    async def write(self, ctx: RequestContext, p: CommandExecWriteParams) -> dict[str, Any]:
        self._check(ctx)
        data = decode_base64(p.delta_base64, "deltaBase64") if p.delta_base64 else b""
        await self.sessions.write(ctx.connection.id, p.process_id, data, p.close_stdin)
        return {}

    async def terminate(self, ctx: RequestContext, p: CommandExecTerminateParams) -> dict[str, Any]:
        self._check(ctx)
        self.sessions.terminate(ctx.connection.id, p.process_id)
        return {}

    async def resize(self, ctx: RequestContext, p: CommandExecResizeParams) -> dict[str, Any]:
        self._check(ctx)
        self.sessions.resize(ctx.connection.id, p.process_id, p.size.rows, p.size.cols)
        return {}
