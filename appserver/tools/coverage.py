"""The README's protocol coverage table: every stable client method of Codex 0.169.0 and our
status (``python -m appserver.tools.coverage`` prints it).

Owns the list of stable method names (``methods_stable.json``, names only, taken from the
official schema), the reason each unimplemented one is not implemented (``NOT_YET_REASONS``)
and ``coverage_markdown(registry)``, which renders the README's table from the server's own
method registry so the two cannot drift (a test compares them, and checks that every
unimplemented method has a reason and that no reason outlives its methods). A method we do
not implement gets the reference's unknown-method reply (-32600 ``Invalid request: unknown
variant ...``), never a hang. README tooling, not protocol: it renders from the server's
registry, so it lives above the server and nothing but tests imports it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from appserver.protocol.registry import MethodRegistry

NOT_YET = "not yet (replies -32600 unknown variant)"

# Client notifications the processor handles itself (``MessageProcessor._on_notification``):
# there is no registry for them.
HANDLED_NOTIFICATIONS: dict[str, str] = {
    "initialized": "implemented (accepted and ignored; as in Codex, requests do not wait for it)",
}

_CONFIG_WRITE = (
    "the user's `config.toml` only (another `filePath` is `configLayerReadonly`); comments "
    "and order kept; the running server takes the new file at once"
)

# Notes on implemented methods that do less than the reference.
IMPLEMENTED_NOTES: dict[str, str] = {
    "configRequirements/read": (
        "`requirements: null`: there is no managed admin or MDM config layer here"
    ),
    "permissionProfile/list": (
        "Codex's three built-in profiles, mapped to the sandbox modes; no user-defined "
        "`[permissions.*]` profiles"
    ),
    "hooks/list": "the engine runs no lifecycle hooks, so every directory lists none",
    "plugin/installed": "no plugin loader yet, so no marketplace lists any",
    "mcpServerStatus/list": (
        "never waits for a server still starting (the reference does, with a `threadId`): "
        "it is listed `starting` with no tools yet; `runtimeStatus` only with a `threadId`"
    ),
    "mcpServer/tool/call": "no approval and no items, as in the reference",
    "config/mcpServer/reload": (
        "reads config.toml's `[mcp_servers]` again; `-c` overrides of them are not replayed"
    ),
    "review/start": (
        "`detached` delivery gets -32600, as in Codex 0.169.0 (the schema offers `inline` "
        "only); the diff is read with `git` and given to the reviewer, which runs no tools"
    ),
    "config/value/write": _CONFIG_WRITE,
    "config/batchWrite": _CONFIG_WRITE,
    "modelProvider/config/write": (
        "`customGateway` only; `bedrock` and `gcp` get -32600 (no cloud SDKs here)"
    ),
    "modelProvider/capabilities/read": (
        "`imageGeneration` and `webSearch` are false: the engine offers neither hosted tool"
    ),
    "experimentalFeature/list": "the one `[features]` flag the engine acts on: `shell_tool`",
    "thread/shellCommand": (
        "a turn of its own in the thread; -32600 while the thread has an active turn"
    ),
    "fuzzyFileSearch": "the best 50 matches; the session variant (experimental) is not built",
    "account/login/start": (
        "API key only; `chatgpt`, `chatgptDeviceCode` and `chatgptAuthTokens` get -32600: "
        "they need OpenAI's hosted services"
    ),
}

_HOSTED = "needs OpenAI's hosted services; this server is offline-first"
_PLUGINS = (
    "plugins bundle skills, MCP servers and apps; the engine finds skills on disk but has no "
    "plugin installer and no connectors yet"
)
_MCP_OAUTH = (
    "OAuth sign-in to a streamable-HTTP MCP server (the SDK's OAuth client provider, a "
    "loopback redirect and a token store) is not built; HTTP servers authenticate with "
    "`bearer_token_env_var`, `http_headers` or `env_http_headers`"
)
_EXTERNAL_AGENT = "imports config, skills and sessions from other coding agents: no importers here"

# Why each stable method we lack is not implemented. A key is a method name, or a prefix
# ending in ``*`` for a family; an exact name wins over a prefix, a longer prefix over a
# shorter one.
NOT_YET_REASONS: dict[str, str] = {
    # threads
    "thread/approveGuardianDeniedAction": (
        "overrides a denial by the auto-review (guardian) reviewer; there is no auto-review "
        "here: every approval goes to the user"
    ),
    "thread/revert": (
        "replacing the persisted history with the turns before one (`thread/reverted`) needs "
        "a rollback record: rollouts here are append-only and have none yet"
    ),
    # skills, hooks, plugins, apps
    "marketplace/*": ("plugin marketplaces only feed `plugin/install`; " + _PLUGINS),
    "plugin/*": _PLUGINS,
    "plugin/share/*": "shares plugins through OpenAI's plugin service: " + _HOSTED,
    "app/*": "apps are ChatGPT connectors, hosted by OpenAI: " + _HOSTED,
    # models, providers, features, permissions
    "account/gatewayOAuth/*": (
        "OAuth sign-in to an administrator-configured model gateway; providers here use an "
        "API key (the `env_key` variable or `auth.json`) or none"
    ),
    "windowsSandbox/*": (
        "sets up Codex's Windows sandbox; this server sandboxes with bubblewrap on Linux and "
        "otherwise asks for approval"
    ),
    # MCP
    "mcpServer/oauth/login": _MCP_OAUTH,
    # ChatGPT account and OpenAI services
    "account/securitySetup/read": "a ChatGPT account security reminder: " + _HOSTED,
    "account/rateLimits/read": "ChatGPT plan rate limits and credits: " + _HOSTED,
    "account/rateLimitResetCredit/consume": (
        "redeems a ChatGPT rate-limit reset credit: " + _HOSTED
    ),
    "account/usage/read": "ChatGPT account usage: " + _HOSTED,
    "account/workspaceMessages/read": "ChatGPT workspace announcements: " + _HOSTED,
    "account/sendAddCreditsNudgeEmail": (
        "asks OpenAI to email a workspace admin about credits: " + _HOSTED
    ),
    "feedback/upload": "uploads logs and the thread to OpenAI's feedback service: " + _HOSTED,
    "feedback/save": (
        "writes the feedback bundle (logs and thread) as a local ZIP; the server keeps no "
        "log files to bundle (logs go to stderr only)"
    ),
    "externalAgentConfig/*": _EXTERNAL_AGENT,
}


def _stable() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        resources.files("appserver.protocol").joinpath("methods_stable.json").read_text()
    )
    return data


def stable_methods() -> list[str]:
    """The stable ClientRequest method names, in the schema's order."""
    return [str(m) for m in _stable()["ClientRequest"]]


def stable_notifications() -> list[str]:
    """The stable ClientNotification method names."""
    return [str(m) for m in _stable()["ClientNotification"]]


def not_yet_key(name: str) -> str | None:
    """The ``NOT_YET_REASONS`` key that gives ``name``'s reason, or None when none does."""
    if name in NOT_YET_REASONS:
        return name
    prefixes = [k for k in NOT_YET_REASONS if k.endswith("*") and name.startswith(k[:-1])]
    return max(prefixes, key=len) if prefixes else None


def not_yet_reason(name: str) -> str | None:
    """Why ``name`` is not implemented, or None when ``NOT_YET_REASONS`` does not say."""
    key = not_yet_key(name)
    return None if key is None else NOT_YET_REASONS[key]


def implemented_methods(registry: MethodRegistry) -> set[str]:
    return set(registry.names()) | {"initialize"}


def coverage_markdown(registry: MethodRegistry) -> str:
    implemented = implemented_methods(registry)
    rows = ["| method | status |", "| --- | --- |"]
    # Adjacent unimplemented methods with the same reason share a row.
    groups: list[tuple[list[str], str]] = []
    for name in stable_methods():
        if name in implemented:
            note = IMPLEMENTED_NOTES.get(name)
            groups.append(([name], f"implemented ({note})" if note else "implemented"))
            continue
        reason = not_yet_reason(name)
        status = f"{NOT_YET}: {reason}" if reason else NOT_YET
        if groups and groups[-1][1] == status:
            groups[-1][0].append(name)
        else:
            groups.append(([name], status))
    for names, status in groups:
        rows.append(f"| {', '.join(f'`{n}`' for n in names)} | {status} |")
    for name in stable_notifications():
        status = HANDLED_NOTIFICATIONS.get(name, "not yet (ignored)")
        rows.append(f"| `{name}` (notification) | {status} |")
    extra = sorted(implemented - set(stable_methods()))
    for name in extra:
        spec = registry.get(name)
        flag = " (experimental)" if spec is not None and spec.experimental else ""
        rows.append(f"| `{name}` | implemented{flag} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import tempfile
    from pathlib import Path

    from appserver.server.app import App
    from appserver.server.config import LoadedConfig

    with tempfile.TemporaryDirectory() as tmp:
        app = App(LoadedConfig(home=Path(tmp), path=Path(tmp) / "config.toml", values={}))
        print(coverage_markdown(app.registry), end="")
