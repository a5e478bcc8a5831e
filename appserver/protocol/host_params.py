"""Params models of the host methods: ``fs/*``, ``command/exec*``, ``fuzzyFileSearch``,
``thread/shellCommand``.

Models only (schema: ``Fs*Params``, ``CommandExec*Params``, ``FuzzyFileSearchParams``,
``ThreadShellCommandParams``). Paths are plain strings here: whether one is absolute is the
host boundary's check (-32600), as the reference's ``AbsolutePathBuf`` does it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from appserver.protocol.base import WireModel


class FsPathParams(WireModel):
    path: str


class FsReadFileParams(FsPathParams):
    pass


class FsGetMetadataParams(FsPathParams):
    pass


class FsReadDirectoryParams(FsPathParams):
    pass


class FsWriteFileParams(FsPathParams):
    data_base64: str


class FsCreateDirectoryParams(FsPathParams):
    recursive: bool | None = None


class FsRemoveParams(FsPathParams):
    recursive: bool | None = None
    force: bool | None = None


class FsCopyParams(WireModel):
    source_path: str
    destination_path: str
    recursive: bool = False


class FsWatchParams(FsPathParams):
    watch_id: str


class FsUnwatchParams(WireModel):
    watch_id: str


class TerminalSize(WireModel):
    rows: int = Field(ge=0, le=65535)
    cols: int = Field(ge=0, le=65535)


class CommandExecParams(WireModel):
    command: list[str]
    process_id: str | None = None
    tty: bool = False
    stream_stdin: bool = False
    stream_stdout_stderr: bool = False
    output_bytes_cap: int | None = Field(default=None, ge=0)
    disable_output_cap: bool = False
    disable_timeout: bool = False
    timeout_ms: int | None = None
    cwd: str | None = None
    env: dict[str, str | None] | None = None
    size: TerminalSize | None = None
    sandbox_policy: dict[str, Any] | None = None


class CommandExecWriteParams(WireModel):
    process_id: str
    delta_base64: str | None = None
    close_stdin: bool = False


class CommandExecTerminateParams(WireModel):
    process_id: str


class CommandExecResizeParams(WireModel):
    process_id: str
    size: TerminalSize


class FuzzyFileSearchParams(WireModel):
    query: str
    roots: list[str]
    cancellation_token: str | None = None


class ThreadShellCommandParams(WireModel):
    thread_id: str
    command: str
    timeout_ms: int | None = None
