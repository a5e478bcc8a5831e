"""``command/exec``, ``command/exec/write``, ``command/exec/terminate``,
``command/exec/resize``, and ``thread/shellCommand`` (the user's ``!cmd``).

Owns these handlers and their registration. Each asks the boundary for the connection's
access (only unrestricted connections run commands) and hands the work to
:class:`appserver.host.exec_sessions.ExecSessions`. ``command/exec`` replies when the process
has exited, after every ``command/exec/outputDelta`` of it (they are sent, in order, to the
same connection before the reply). It must never run a process itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appserver.core.processor import Reply, RequestContext
from appserver.host.boundary import Boundary
from appserver.host.exec_sessions import ExecSessions, require_unrestricted
from appserver.protocol.errors import RpcError
from appserver.protocol.host_params import (
    CommandExecParams,
    CommandExecResizeParams,
    CommandExecTerminateParams,
    CommandExecWriteParams,
    ThreadShellCommandParams,
)
from appserver.protocol.registry import MethodRegistry, Scope
from appserver.server.engine_errors import mapped
from appserver.server.handlers.host_fs import decode_base64

if TYPE_CHECKING:
    from appserver.engine.manager import ThreadManager
    from appserver.engine.thread_state import LoadedThread
    from appserver.engine.tools.command_policy import CommandPolicy
    from appserver.engine.turn_runner import TurnRunner
    from appserver.protocol.wire_types import (
        CommandExecResizeResponse,
        CommandExecResponse,
        CommandExecTerminateResponse,
        CommandExecWriteResponse,
    )

OUTPUT_DELTA = "command/exec/outputDelta"


class HostExecHandlers:
    def __init__(self, boundary: Boundary, sessions: ExecSessions) -> None:
        self.boundary = boundary
        self.sessions = sessions

    def register(self, registry: MethodRegistry) -> None:
        registry.register(
            "command/exec", CommandExecParams, self.exec, result="CommandExecResponse"
        )
        registry.register(
            "command/exec/write",
            CommandExecWriteParams,
            self.write,
            result="CommandExecWriteResponse",
        )
        registry.register(
            "command/exec/terminate",
            CommandExecTerminateParams,
            self.terminate,
            result="CommandExecTerminateResponse",
        )
        registry.register(
            "command/exec/resize",
            CommandExecResizeParams,
            self.resize,
            result="CommandExecResizeResponse",
        )

    def _check(self, ctx: RequestContext) -> None:
        require_unrestricted(self.boundary.access(ctx.connection))

    async def exec(self, ctx: RequestContext, p: CommandExecParams) -> CommandExecResponse:
        self._check(ctx)
        return await self.sessions.run(ctx.connection.id, p)

    async def write(
        self, ctx: RequestContext, p: CommandExecWriteParams
    ) -> CommandExecWriteResponse:
        self._check(ctx)
        data = decode_base64(p.delta_base64, "deltaBase64") if p.delta_base64 else b""
        await self.sessions.write(ctx.connection.id, p.process_id, data, p.close_stdin)
        return {}

    async def terminate(
        self, ctx: RequestContext, p: CommandExecTerminateParams
    ) -> CommandExecTerminateResponse:
        self._check(ctx)
        self.sessions.terminate(ctx.connection.id, p.process_id)
        return {}

    async def resize(
        self, ctx: RequestContext, p: CommandExecResizeParams
    ) -> CommandExecResizeResponse:
        self._check(ctx)
        self.sessions.resize(ctx.connection.id, p.process_id, p.size.rows, p.size.cols)
        return {}


class UserShellHandlers:
    """``thread/shellCommand``: replies ``{}`` (``ThreadShellCommandResponse``) at once, then
    runs the command as a turn of its own in the thread (:mod:`appserver.host.user_shell`).
    A connection with full host access runs it unconfined, as the schema says; any other
    connection that may start turns on the thread (a loopback WebSocket without a token, or an
    authenticated one limited to roots) runs it confined by the thread's own sandbox policy:
    exactly what the agent's commands on that thread may do, never more. (The stock TUI ends
    its session when `!cmd` is refused, so a refusal would break it.)"""

    def __init__(self, boundary: Boundary, manager: ThreadManager, commands: CommandPolicy) -> None:
        self.boundary = boundary
        self.manager = manager
        self.commands = commands

    def register(self, registry: MethodRegistry) -> None:
        registry.register(
            "thread/shellCommand",
            ThreadShellCommandParams,
            mapped(self.shell_command),
            result="ThreadShellCommandResponse",
            scope=Scope.THREAD,
        )

    async def shell_command(self, ctx: RequestContext, p: ThreadShellCommandParams) -> Any:
        from appserver.engine.ids import uuid7
        from appserver.host.user_shell import run_user_shell
        from appserver.protocol.errors import invalid_request

        if not p.command.strip():
            raise invalid_request("command must not be empty")
        if p.timeout_ms is not None and p.timeout_ms < 0:
            raise invalid_request("timeoutMs must not be negative")
        thread = self.manager.get_loaded(p.thread_id)
        confine = self._confinement(ctx, thread)
        turn = self.manager.begin_turn(thread)
        env = self.commands.env()

        async def body(runner: TurnRunner) -> None:
            await run_user_shell(
                runner,
                thread=thread,
                active=turn,
                item_id=uuid7(),
                command=p.command,
                env=env,
                timeout_ms=p.timeout_ms,
                confine=confine,
            )

        # After this reply goes out: the turn's notifications follow it.
        return Reply({}, after=lambda: self.manager.launch_body(thread, turn, body))

    def _confinement(
        self, ctx: RequestContext, thread: LoadedThread
    ) -> Callable[[list[str]], list[str]] | None:
        """None (unconfined) for a connection with full host access; otherwise the wrapper
        that confines a command by the thread's sandbox policy, or -32600 when no sandbox
        backend works here and the policy is not full access."""
        from pathlib import Path

        from appserver.engine.tools import sandbox

        if self.boundary.full_access(ctx.connection):
            return None
        policy = thread.settings.sandbox_policy
        cwd = Path(thread.settings.cwd)
        if sandbox.wrap_command(["true"], policy, cwd) is None:
            raise RpcError(
                -32600,
                "thread/shellCommand on this connection runs in the thread's sandbox, and no "
                "sandbox backend works here",
                {"reason": "sandboxUnavailable"},
            )

        def confine(argv: list[str]) -> list[str]:
            wrapped = sandbox.wrap_command(argv, policy, cwd)
            if wrapped is None:  # the backend went away since the check: never run unconfined
                return ["false"]
            return wrapped

        return confine
