"""``command/exec`` sessions: params checked, the command confined, processes per connection.

Owns the table of running ``command/exec`` processes (connection id → client ``processId``
→ process), the checks of the request's shape (the reference's -32600 cases: an empty
``command``, streaming or a PTY without a ``processId``, a ``size`` without ``tty``, a cap or
timeout both set and disabled, a ``processId`` already running on the connection), and the
building of what runs: the environment is the agent's (``CommandPolicy``: credentials
scrubbed) plus the request's ``env`` (``null`` unsets), and ``argv`` is confined by
``sandbox.wrap_command`` under the request's ``sandboxPolicy``, or the configured
``sandbox_mode`` when it names none. A policy that no sandbox backend here can enforce is
refused (-32600), never run unconfined. The processes of a connection are killed when it
closes; all of them when the server stops.

It must never let a limited connection (see :mod:`appserver.host.boundary`) run anything.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from appserver.engine.tools import sandbox
from appserver.engine.tools.command_policy import CommandPolicy
from appserver.host.boundary import Access, absolute_path
from appserver.host.process import ExecProcess, ExecResult, ExecSpec
from appserver.protocol.errors import RpcError, invalid_request
from appserver.protocol.host_params import CommandExecParams

if TYPE_CHECKING:
    from appserver.protocol.wire_types import (
        CommandExecOutputDeltaNotification,
        CommandExecOutputStream,
        CommandExecResponse,
    )

__all__ = ["DEFAULT_OUTPUT_CAP", "LIMITED_MESSAGE", "ExecSessions"]

DEFAULT_OUTPUT_CAP = 1024 * 1024  # bytes per stream
LIMITED_MESSAGE = (
    "Invalid request: this connection is limited to the host roots and may not run "
    "commands (a command can read outside them); set [host_api] unrestricted = true to allow"
)

# (connection, command/exec/outputDelta params)
Delta = Callable[[int, "CommandExecOutputDeltaNotification"], Awaitable[None]]


def require_unrestricted(access: Access) -> None:
    if not access.unrestricted:
        raise RpcError(-32600, LIMITED_MESSAGE, {"reason": "outsideHostRoots"})


@dataclass
class _Running:
    process: ExecProcess
    stream_stdin: bool


class ExecSessions:
    def __init__(
        self,
        commands: Callable[[], CommandPolicy],
        default_mode: str,
        send_delta: Delta,
    ) -> None:
        self._commands = commands
        self._default_mode = default_mode
        self._send_delta = send_delta
        self._by_conn: dict[int, dict[str, _Running]] = {}
        self._tasks: dict[int, set[asyncio.Task[Any]]] = {}

    # -- building ---------------------------------------------------------------------------
    def spec(self, p: CommandExecParams) -> ExecSpec:
        if not p.command:
            raise invalid_request("command must not be empty")
        if p.process_id is None:
            for flag, name in ((p.tty, "tty"), (p.stream_stdin, "streamStdin")):
                if flag:
                    raise invalid_request(f"{name} requires a client-supplied processId")
            if p.stream_stdout_stderr:
                raise invalid_request("streamStdoutStderr requires a client-supplied processId")
        if p.size is not None and not p.tty:
            raise invalid_request("size is only valid when tty is true")
        if p.disable_output_cap and p.output_bytes_cap is not None:
            raise invalid_request("disableOutputCap cannot be combined with outputBytesCap")
        if p.disable_timeout and p.timeout_ms is not None:
            raise invalid_request("disableTimeout cannot be combined with timeoutMs")
        if p.timeout_ms is not None and p.timeout_ms < 0:
            raise invalid_request("timeoutMs must not be negative")
        cwd = absolute_path(p.cwd) if p.cwd is not None else os.getcwd()
        if "\0" in "".join(p.command):
            raise invalid_request("Invalid request: command contains a NUL byte")
        policy = self._policy(p.sandbox_policy, Path(cwd))
        argv = sandbox.wrap_command(list(p.command), policy, Path(cwd))
        if argv is None:
            raise invalid_request(
                "no sandbox backend works here to enforce this sandboxPolicy (see the "
                "startup warning); ask for dangerFullAccess to run it unconfined"
            )
        commands = self._commands()
        env = commands.env()
        for name, value in (p.env or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        if p.tty:
            env.setdefault("TERM", "xterm-256color")
        if p.disable_timeout:
            timeout_s: float | None = None
        elif p.timeout_ms is not None:
            timeout_s = min(p.timeout_ms, commands.max_timeout_ms) / 1000
        else:
            timeout_s = commands.default_timeout_ms / 1000
        cap = None if p.disable_output_cap else (p.output_bytes_cap or DEFAULT_OUTPUT_CAP)
        if p.output_bytes_cap == 0:
            cap = 0
        size = (p.size.rows, p.size.cols) if p.size is not None else None
        return ExecSpec(
            argv=argv,
            cwd=cwd,
            env=env,
            tty=p.tty,
            stdin=p.tty or p.stream_stdin,
            size=size,
            output_cap=cap,
            timeout_s=timeout_s,
        )

    def _policy(self, given: dict[str, Any] | None, cwd: Path) -> sandbox.SandboxPolicy:
        try:
            if given is None:
                return sandbox.SandboxPolicy.from_dict(sandbox.from_mode(self._default_mode, cwd))
            return sandbox.SandboxPolicy.from_dict(given)
        except ValueError as exc:
            raise invalid_request(f"Invalid request: {exc}") from None

    # -- running ----------------------------------------------------------------------------
    async def run(self, conn_id: int, p: CommandExecParams) -> CommandExecResponse:
        spec = self.spec(p)
        streaming = p.tty or p.stream_stdout_stderr
        process_id = p.process_id
        on_output = None
        if streaming and process_id is not None:
            pid = process_id

            async def on_output(stream: str, data: bytes, cap_reached: bool) -> None:
                await self._send_delta(
                    conn_id,
                    {
                        "processId": pid,
                        "stream": cast("CommandExecOutputStream", stream),
                        "deltaBase64": base64.b64encode(data).decode("ascii"),
                        "capReached": cap_reached,
                    },
                )

        process = ExecProcess(spec, on_output)
        table = self._by_conn.setdefault(conn_id, {})
        if process_id is not None:
            if process_id in table:
                raise invalid_request(
                    f"Invalid request: processId `{process_id}` is already running"
                )
            table[process_id] = _Running(process, spec.stdin)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.setdefault(conn_id, set()).add(task)
        try:
            result: ExecResult = await process.run()
        finally:
            entry = table.get(process_id) if process_id is not None else None
            if entry is not None and entry.process is process:
                del table[process_id]  # type: ignore[arg-type]
            if task is not None:
                self._tasks.get(conn_id, set()).discard(task)
        return {
            "exitCode": result.exit_code,
            "stdout": result.stdout.decode("utf-8", errors="replace"),
            "stderr": result.stderr.decode("utf-8", errors="replace"),
        }

    def _running(self, conn_id: int, process_id: str) -> _Running:
        running = self._by_conn.get(conn_id, {}).get(process_id)
        if running is None:
            raise invalid_request(f"Invalid request: no running process `{process_id}`")
        return running

    async def write(self, conn_id: int, process_id: str, data: bytes, close: bool) -> None:
        running = self._running(conn_id, process_id)
        if not running.stream_stdin:
            raise invalid_request(
                f"Invalid request: process `{process_id}` was not started with streamStdin"
            )
        try:
            await running.process.write(data, close)
        except OSError:
            raise invalid_request(
                f"Invalid request: stdin of process `{process_id}` is closed"
            ) from None

    def terminate(self, conn_id: int, process_id: str) -> None:
        self._running(conn_id, process_id).process.terminate()

    def resize(self, conn_id: int, process_id: str, rows: int, cols: int) -> None:
        running = self._running(conn_id, process_id)
        try:
            running.process.resize(rows, cols)
        except ValueError:
            raise invalid_request(
                f"Invalid request: process `{process_id}` was not started with tty"
            ) from None
        except OSError:
            pass  # the terminal closed as the process exited: nothing to resize

    def drop_connection(self, conn_id: int) -> None:
        """The connection went away: its processes die (their groups are SIGKILLed as the
        cancelled ``run`` unwinds)."""
        self._by_conn.pop(conn_id, None)
        for task in self._tasks.pop(conn_id, set()):
            task.cancel()
