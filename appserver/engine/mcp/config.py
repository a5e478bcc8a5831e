"""``[mcp_servers.NAME]`` as Codex reads it, from config.toml and from a thread's ``config`` map.

Owns ``McpServerConfig`` (one server's definition: a stdio command or a streamable-HTTP url,
plus the switches every server has) and ``parse_servers``, which turns the ``mcp_servers``
table into definitions and a list of warnings, one per bad entry (the entry is skipped; the
rest still load). Keys and defaults are Codex's: ``command``, ``args``, ``env``, ``env_vars``,
``cwd``; ``url``, ``bearer_token_env_var``, ``http_headers``, ``env_http_headers``; ``enabled``
(true), ``required`` (false), ``enabled_tools`` / ``disabled_tools``, ``startup_timeout_sec``
(10), ``tool_timeout_sec`` (60), ``default_tools_approval_mode`` (``auto``), and per tool
``tools.NAME.approval_mode``.

It must never read a secret into a message or a log: warnings name keys, never values, and
``McpServerConfig``'s repr leaves out ``env`` and every header. Environment variables are read
only by ``process_env`` and ``request_headers``, at connect time.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from appserver.engine.errors import EngineError

DEFAULT_STARTUP_TIMEOUT_S = 10.0
DEFAULT_TOOL_TIMEOUT_S = 60.0
APPROVAL_MODES = ("auto", "prompt", "approve")
ApprovalMode = Literal["auto", "prompt", "approve"]
# Server names become part of the tool namespace the model sees (``mcp__NAME``).
NAME_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSW|AUTH|CREDENTIAL|COOKIE", re.IGNORECASE)

_COMMON = {
    "enabled",
    "required",
    "enabled_tools",
    "disabled_tools",
    "startup_timeout_sec",
    "startup_timeout_ms",
    "tool_timeout_sec",
    "default_tools_approval_mode",
    "tools",
}
_STDIO = {"command", "args", "env", "env_vars", "cwd"}
_HTTP = {"url", "bearer_token_env_var", "http_headers", "env_http_headers"}


class ConfigProblem(ValueError):
    """One bad entry, worded for a ``configWarning`` (keys only, never values)."""


@dataclass(frozen=True)
class McpServerConfig:
    name: str
    transport: Literal["stdio", "http"]
    command: str | None = None
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    env_vars: tuple[str, ...] = ()
    cwd: str | None = None
    url: str | None = field(default=None, repr=False)  # may hold credentials
    bearer_token_env_var: str | None = None
    http_headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    env_http_headers: tuple[tuple[str, str], ...] = ()
    enabled: bool = True
    required: bool = False
    enabled_tools: tuple[str, ...] | None = None
    disabled_tools: tuple[str, ...] = ()
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S
    tool_timeout_s: float = DEFAULT_TOOL_TIMEOUT_S
    approval_mode: ApprovalMode = "auto"
    tool_approval: tuple[tuple[str, ApprovalMode], ...] = ()
    scope: Literal["config", "thread"] = "config"

    def definition(self) -> tuple[Any, ...]:
        """What decides the process (or HTTP session): equal definitions share one."""
        return (
            self.transport,
            self.command,
            self.args,
            self.env,
            self.env_vars,
            self.cwd,
            self.url,
            self.bearer_token_env_var,
            self.http_headers,
            self.env_http_headers,
        )

    def allows_tool(self, tool: str) -> bool:
        if self.enabled_tools is not None and tool not in self.enabled_tools:
            return False
        return tool not in self.disabled_tools

    def approval_for(self, tool: str) -> ApprovalMode:
        return dict(self.tool_approval).get(tool, self.approval_mode)

    def process_env(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The variables given to a stdio server on top of the SDK's safe defaults: the
        ``env_vars`` named (from our environment, when set), then ``env``."""
        source = os.environ if environ is None else environ
        out = {k: source[k] for k in self.env_vars if k in source}
        out.update(dict(self.env))
        return out

    def request_headers(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The headers of every request to an HTTP server: ``http_headers``, the
        ``env_http_headers`` whose variables are set, and the bearer token."""
        source = os.environ if environ is None else environ
        headers = dict(self.http_headers)
        for header, var in self.env_http_headers:
            if source.get(var):
                headers[header] = source[var]
        if self.bearer_token_env_var and source.get(self.bearer_token_env_var):
            headers["Authorization"] = f"Bearer {source[self.bearer_token_env_var]}"
        return headers

    def missing_token(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The bearer variable's name when it is configured but unset (a startup error)."""
        source = os.environ if environ is None else environ
        var = self.bearer_token_env_var
        return var if var and not source.get(var) else None

    def secret_values(self, environ: Mapping[str, str] | None = None) -> list[str]:
        """Values to blank out of every log and rollout line (``store.redaction``): headers,
        the bearer token, variables passed through, and ``env`` values under a secret-looking
        name (not all of ``env``: a path there must stay readable)."""
        values = list(self.request_headers(environ).values())
        source = os.environ if environ is None else environ
        values += [source[k] for k in self.env_vars if k in source]
        values += [v for k, v in self.env if _SECRET_NAME.search(k)]
        return values

    def auth_status(self) -> str:
        if self.transport == "stdio":
            return "unsupported"
        return "bearerToken" if self.bearer_token_env_var else "unsupported"

    def http_origin(self) -> str | None:
        if self.url is None:
            return None
        match = re.match(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)(?:[^@/]*@)?([^/?#]*)", self.url)
        return (match.group(1) + match.group(2)) if match else None


def _strings(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigProblem(f"`{key}` must be a list of strings")
    return tuple(value)


def _string_map(value: Any, key: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigProblem(f"`{key}` must be a table of strings")
    return tuple(sorted(value.items()))


def _seconds(value: Any, key: str, scale: float = 1.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigProblem(f"`{key}` must be a positive number")
    return float(value) * scale


def _mode(value: Any, key: str) -> ApprovalMode:
    if value not in APPROVAL_MODES:
        raise ConfigProblem(f"`{key}` must be one of " + ", ".join(APPROVAL_MODES))
    mode: ApprovalMode = value
    return mode


def parse_server(
    name: str, entry: Any, scope: Literal["config", "thread"] = "config"
) -> McpServerConfig:
    """One entry; raises ``ConfigProblem`` (naming the key at fault) when it is unusable."""
    if not NAME_RE.match(name):
        raise ConfigProblem("the name may hold only letters, digits, `_` and `-`")
    if not isinstance(entry, Mapping):
        raise ConfigProblem("must be a table")
    unknown = sorted(set(entry) - _COMMON - _STDIO - _HTTP)
    if unknown:
        raise ConfigProblem("unknown key " + ", ".join(f"`{k}`" for k in unknown))
    has_command, has_url = "command" in entry, "url" in entry
    if has_command == has_url:
        raise ConfigProblem("needs exactly one of `command` (stdio) or `url` (streamable HTTP)")
    kw: dict[str, Any] = {}
    if has_command:
        stray = sorted(set(entry) & _HTTP)
        if stray:
            raise ConfigProblem("a stdio server takes no " + ", ".join(f"`{k}`" for k in stray))
        command = entry["command"]
        if not isinstance(command, str) or not command.strip():
            raise ConfigProblem("`command` must be a non-empty string")
        kw.update(transport="stdio", command=command)
        if "args" in entry:
            kw["args"] = _strings(entry["args"], "args")
        if "env" in entry:
            kw["env"] = _string_map(entry["env"], "env")
        if "env_vars" in entry:
            kw["env_vars"] = _strings(entry["env_vars"], "env_vars")
        if "cwd" in entry:
            if not isinstance(entry["cwd"], str) or not os.path.isabs(entry["cwd"]):
                raise ConfigProblem("`cwd` must be an absolute path")
            kw["cwd"] = entry["cwd"]
    else:
        stray = sorted(set(entry) & _STDIO)
        if stray:
            raise ConfigProblem(
                "a streamable-HTTP server takes no " + ", ".join(f"`{k}`" for k in stray)
            )
        url = entry["url"]
        if not isinstance(url, str) or not re.match(r"^https?://[^/\s]+", url):
            raise ConfigProblem("`url` must be an http:// or https:// URL")
        kw.update(transport="http", url=url)
        token = entry.get("bearer_token_env_var")
        if token is not None:
            if not isinstance(token, str) or not token:
                raise ConfigProblem("`bearer_token_env_var` must be a variable name")
            kw["bearer_token_env_var"] = token
        if "http_headers" in entry:
            kw["http_headers"] = _string_map(entry["http_headers"], "http_headers")
        if "env_http_headers" in entry:
            kw["env_http_headers"] = _string_map(entry["env_http_headers"], "env_http_headers")
    for key in ("enabled", "required"):
        if key in entry:
            if not isinstance(entry[key], bool):
                raise ConfigProblem(f"`{key}` must be a boolean")
            kw[key] = entry[key]
    if "enabled_tools" in entry:
        kw["enabled_tools"] = _strings(entry["enabled_tools"], "enabled_tools")
    if "disabled_tools" in entry:
        kw["disabled_tools"] = _strings(entry["disabled_tools"], "disabled_tools")
    if "startup_timeout_sec" in entry:
        kw["startup_timeout_s"] = _seconds(entry["startup_timeout_sec"], "startup_timeout_sec")
    elif "startup_timeout_ms" in entry:
        kw["startup_timeout_s"] = _seconds(entry["startup_timeout_ms"], "startup_timeout_ms", 0.001)
    if "tool_timeout_sec" in entry:
        kw["tool_timeout_s"] = _seconds(entry["tool_timeout_sec"], "tool_timeout_sec")
    if "default_tools_approval_mode" in entry:
        kw["approval_mode"] = _mode(
            entry["default_tools_approval_mode"], "default_tools_approval_mode"
        )
    if "tools" in entry:
        tools = entry["tools"]
        if not isinstance(tools, Mapping):
            raise ConfigProblem("`tools` must be a table of tables")
        modes: list[tuple[str, ApprovalMode]] = []
        for tool, settings in tools.items():
            if not isinstance(settings, Mapping):
                raise ConfigProblem(f"`tools.{tool}` must be a table")
            if "approval_mode" in settings:
                modes.append(
                    (str(tool), _mode(settings["approval_mode"], f"tools.{tool}.approval_mode"))
                )
        kw["tool_approval"] = tuple(sorted(modes))
    return McpServerConfig(name=name, scope=scope, **kw)


@dataclass
class ParsedServers:
    servers: dict[str, McpServerConfig] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # skipped entries
    errors: list[str] = field(default_factory=list)  # skipped entries marked `required`


def parse_servers(table: Any, scope: Literal["config", "thread"] = "config") -> ParsedServers:
    """Every usable entry of an ``mcp_servers`` table, and one message per unusable one
    (``[mcp_servers.NAME]`` is skipped: a bad entry never stops the others). A bad entry
    marked ``required = true`` goes to ``errors``: the caller refuses to start with it."""
    where = "config.toml" if scope == "config" else "the thread's config"
    out = ParsedServers()
    if table is None:
        return out
    if not isinstance(table, Mapping):
        out.warnings.append(f"`mcp_servers` in {where} must be a table; no MCP server is used")
        return out
    for name, entry in table.items():
        try:
            out.servers[str(name)] = parse_server(str(name), entry, scope)
        except ConfigProblem as exc:
            message = f"MCP server `{name}` in {where} is ignored: {exc}"
            required = isinstance(entry, Mapping) and entry.get("required") is True
            (out.errors if required else out.warnings).append(message)
    return out


def thread_servers(table: Mapping[str, Any]) -> tuple[McpServerConfig, ...]:
    """The servers of a thread's ``config`` map (``mcp_servers.NAME``, as codex-acp passes
    an editor's servers); a bad entry is the client's error (-32600 naming it)."""
    raw = table.get("mcp_servers")
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        raise EngineError("Invalid request: config.mcp_servers: expected a table")
    servers = []
    for name, entry in raw.items():
        try:
            servers.append(parse_server(str(name), entry, "thread"))
        except ConfigProblem as exc:
            raise EngineError(f"Invalid request: config.mcp_servers.{name}: {exc}") from None
    return tuple(servers)
