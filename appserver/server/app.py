"""Assembly: config + registry + processor (+ engine) into one running server.

Owns ``App``: it builds the method registry from the handler groups, runs the processor's
dispatch loop, and stops everything in order (pending server requests cancelled, tasks
finished or cancelled within a bound). Transports attach to ``app.processor``. This module
must never parse CLI arguments or touch signals; ``appserver.cli`` and ``serve`` do that.

Startup comes in two parts. ``App(...)`` builds only what answering ``initialize`` needs: the
config, the processor, the startup warnings, and — when config.toml defines model providers —
their validation, so a bad config still refuses to start. ``load()`` imports and builds the
rest (pydantic models, providers, the engine, the store). With ``lazy=True`` (the CLI) the
processor calls it right after the first ``initialize`` reply or before the first other
request, whichever comes first; otherwise ``App(...)`` calls it at once. The module therefore
imports the engine inside ``load`` only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from appserver.core.processor import MessageProcessor, ServerIdentity
from appserver.engine.tools import sandbox
from appserver.protocol.registry import MethodRegistry
from appserver.server.config import ConfigError, LoadedConfig, load_config
from appserver.store import private, redaction

if TYPE_CHECKING:
    from appserver.engine.manager import ThreadManager
    from appserver.engine.mcp.config import ParsedServers
    from appserver.engine.providers.config import ProviderInfo
    from appserver.engine.tools.command_policy import CommandPolicy
    from appserver.host.boundary import HostApiConfig
    from appserver.protocol.wire_types import CommandExecOutputDeltaNotification
    from appserver.server.auth import AuthStore
    from appserver.server.catalog import Catalog
    from appserver.server.models import ModelClients
    from appserver.store.index import ThreadStore
    from appserver.transports.in_process import InProcessClientHandle

log = logging.getLogger("appserver.server")

# How long stopping waits for interrupted turns to record their end (and for cancelled
# handlers); the whole stop stays well within a second.
STOP_TURNS_S = 0.5


def _sandbox_warning() -> str | None:
    """The startup warning about sandboxing, or None when a backend confines commands."""
    setting = sandbox.backend_setting()
    fallback = (
        "commands in the read-only and workspace-write sandbox modes will ask for approval "
        "instead of running confined."
    )
    if setting not in sandbox.BACKEND_CHOICES:
        return (
            f"{sandbox.BACKEND_ENV}={setting!r} is not one of "
            + ", ".join(sandbox.BACKEND_CHOICES)
            + f": no sandbox is used, and {fallback}"
        )
    if setting == "none":
        return f"sandboxing is switched off ({sandbox.BACKEND_ENV}=none): {fallback}"
    if sandbox.backend() is not None:
        return None
    reasons = "; ".join(f"{b}: {sandbox.backend_problem(b)}" for b in sandbox.candidates())
    return f"no sandbox works here ({reasons}): {fallback}"


class App:
    def __init__(
        self, config: LoadedConfig, *, ingress_capacity: int = 1024, lazy: bool = False
    ) -> None:
        self.config = config
        # 0700, tightened if it exists looser: rollouts hold everything said and run.
        private.ensure_home(config.home)
        self.registry = MethodRegistry()
        # Checked for type by load_config; read here so nothing in load() can fail on it.
        self._idle_unload_s = max(0.0, float(config.get("thread_idle_unload_seconds", 1800)))
        self._providers: dict[str, ProviderInfo] | None = None
        if config.get("model_providers"):
            self._providers = self._resolve_providers()
        self._commands = self._command_policy()
        self._mcp_servers = self._mcp_config()
        self._host_config = self._host_api_config()
        self.processor = MessageProcessor(
            self.registry,
            ServerIdentity(codex_home=str(config.home.resolve())),
            ingress_capacity=ingress_capacity,
            config_warnings=self.startup_warnings(),
            loader=self.load if lazy else None,
        )
        self.processor.on_connection_closed.append(self._connection_closed)
        self._run_task: asyncio.Task[None] | None = None
        # Coroutines that return once a subsystem (e.g. the engine's turns) has gone idle.
        self.idle_waiters: list[Callable[[], Awaitable[None]]] = []
        self.loaded = False
        self._warmup: asyncio.Task[None] | None = None
        if not lazy:
            self.load()

    def _resolve_providers(self) -> dict[str, ProviderInfo]:
        from appserver.engine.providers.config import ProviderConfigError, resolve_providers

        try:
            return resolve_providers(self.config.values)
        except ProviderConfigError as exc:
            raise ConfigError(f"invalid config {self.config.path}: {exc}") from None

    def _command_policy(self) -> CommandPolicy:
        """Checked here, so a bad table refuses to start; the provider variables it must
        scrub are added by ``load`` (resolving the providers imports pydantic)."""
        from appserver.engine.tools.command_policy import CommandPolicy
        from appserver.engine.tools.environment import PolicyError

        try:
            return CommandPolicy.from_config(self.config.values)
        except PolicyError as exc:
            raise ConfigError(f"invalid config {self.config.path}: {exc}") from None

    def _mcp_config(self) -> ParsedServers:
        """``[mcp_servers.*]``: bad entries become startup warnings (``configWarning``); a
        bad entry marked ``required`` refuses to start."""
        from appserver.engine.mcp.config import parse_servers

        parsed = parse_servers(self.config.get("mcp_servers"))
        if parsed.errors:
            raise ConfigError(f"invalid config {self.config.path}: " + "; ".join(parsed.errors))
        return parsed

    def _host_api_config(self) -> HostApiConfig:
        """``[host_api]``, checked here so a bad table refuses to start."""
        from appserver.host.boundary import HostApiConfig, HostConfigError

        try:
            return HostApiConfig.from_config(self.config.values)
        except HostConfigError as exc:
            raise ConfigError(f"invalid config {self.config.path}: {exc}") from None

    def _thread_roots(self) -> list[str]:
        """The loaded threads' working directories and listed writable roots (the host
        boundary's roots for limited connections)."""
        roots: list[str] = []
        for thread in list(self.manager.loaded.values()):
            roots.append(thread.settings.cwd)
            listed = thread.settings.sandbox_policy.get("writableRoots") or []
            roots.extend(str(r) for r in listed if isinstance(r, str))
        return roots

    def _load_host(self, commands: CommandPolicy) -> None:
        from appserver.host.boundary import Boundary
        from appserver.host.exec_sessions import ExecSessions
        from appserver.server.handlers.host_exec import (
            OUTPUT_DELTA,
            HostExecHandlers,
            UserShellHandlers,
        )
        from appserver.server.handlers.host_fs import HostFsHandlers
        from appserver.server.handlers.host_search import HostSearchHandlers

        sender = self.processor.sender
        self.boundary = Boundary(self._host_config, self._thread_roots)
        self.host_fs = HostFsHandlers(self.boundary, sender)
        self.host_fs.register(self.registry)

        async def delta(conn_id: int, params: CommandExecOutputDeltaNotification) -> None:
            await sender.notify(conn_id, OUTPUT_DELTA, dict(params))

        mode = str(self.config.get("sandbox_mode", "read-only"))
        self.host_exec = ExecSessions(lambda: commands, mode, delta)
        HostExecHandlers(self.boundary, self.host_exec).register(self.registry)
        UserShellHandlers(self.boundary, self.manager, commands).register(self.registry)
        self.host_search = HostSearchHandlers(self.boundary)
        self.host_search.register(self.registry)

    def load(self) -> None:
        """Build everything behind the handshake: the providers, the engine, the store, and
        the methods that use them. Idempotent."""
        if self.loaded:
            return
        from appserver.engine.manager import ThreadManager
        from appserver.engine.mcp.manager import McpManager
        from appserver.engine.providers.config import credential_env_vars, credential_values
        from appserver.engine.skills.catalog import SkillsCatalog
        from appserver.engine.skills.roots import SkillPlaces
        from appserver.server.auth import AuthStore
        from appserver.server.catalog import Catalog
        from appserver.server.handlers.account import AccountHandlers
        from appserver.server.handlers.discovery import DiscoveryHandlers
        from appserver.server.handlers.goals import GoalHandlers
        from appserver.server.handlers.history_paging import HistoryPagingHandlers
        from appserver.server.handlers.mcp import McpHandlers
        from appserver.server.handlers.review import ReviewHandlers
        from appserver.server.handlers.sections import SectionHandlers
        from appserver.server.handlers.skills import SkillsHandlers
        from appserver.server.handlers.startup import StartupHandlers
        from appserver.server.handlers.thread_updates import ThreadUpdateHandlers
        from appserver.server.handlers.threads import ThreadHandlers
        from appserver.server.models import ModelClients
        from appserver.server.outbox import CoreOutbox
        from appserver.server.warmup import start_warmup
        from appserver.store.index import ThreadStore

        config = self.config
        providers = self._providers if self._providers is not None else self._resolve_providers()
        for info in providers.values():
            # Blanked out of every rollout line and log line from now on.
            redaction.KNOWN.register(*credential_values(info))
        self.catalog: Catalog = Catalog(config, providers)
        DiscoveryHandlers(config, self.catalog).register(self.registry)
        self.auth: AuthStore = AuthStore(config.home)
        AccountHandlers(self.catalog, self.auth).register(self.registry)
        self.store: ThreadStore = ThreadStore(config.home)
        # Providers with requires_openai_auth fall back to the key an API-key login stored.
        self.models: ModelClients = ModelClients(providers, stored_key=self.auth.api_key)
        markers = config.get("project_root_markers")
        self.skills: SkillsCatalog = SkillsCatalog(
            SkillPlaces.from_environment(
                config.home.resolve(),
                [str(m) for m in markers] if isinstance(markers, list) else None,
            )
        )
        SkillsHandlers(self.skills, self.processor.sender).register(self.registry)
        outbox = CoreOutbox(self.processor.sender)
        # MCP servers start per thread, in the background (engine/mcp/manager.py).
        self.mcp: McpManager = McpManager(outbox, self._mcp_servers.servers)
        # Credentials stay out of the commands the agent runs; every command has a limit.
        commands = self._commands.scrubbing(credential_env_vars(providers, config.values))
        self.manager: ThreadManager = ThreadManager(
            self.store,
            outbox,
            self.models,
            idle_unload_s=self._idle_unload_s,
            commands=commands,
            context_window_for=self.catalog.context_window,
            skills=self.skills,
            mcp=self.mcp,
        )
        McpHandlers(config, self.manager, self.mcp).register(self.registry)
        ThreadHandlers(config, self.catalog, self.manager, self.store.sections).register(
            self.registry
        )
        self._register_config_writes()
        SectionHandlers(self.manager, self.store.sections).register(self.registry)
        StartupHandlers(self.manager).register(self.registry)
        HistoryPagingHandlers(self.manager).register(self.registry)
        ThreadUpdateHandlers(self.manager).register(self.registry)
        ReviewHandlers(self.manager).register(self.registry)
        GoalHandlers(self.manager).register(self.registry)
        self._load_host(commands)
        # Between requests, the first methods' params validators build; then, in the first
        # quiet gap, the default provider's model client (``import openai``) starts building
        # in a thread: ready before a first turn/start typed by a user, never delaying
        # initialize (server/warmup.py, server/models.py).
        default_provider = self.catalog.default_provider
        models = self.models
        processor = self.processor
        self._warmup = start_warmup(
            self.registry,
            then=lambda: models.prepare_in_background(default_provider),
            requests_seen=lambda: processor.requests_seen,
        )
        manager = self.manager
        self.processor.busy_checks.append(lambda: manager.active_turns() > 0)
        self.idle_waiters.append(manager.wait_idle)
        self.loaded = True

    def _register_config_writes(self) -> None:
        """Config writes, and the provider and feature views on the same live config."""
        from appserver.server.config_reload import LiveConfig
        from appserver.server.handlers.config_write import ConfigWriteHandlers, ConfigWriteService
        from appserver.server.handlers.model_providers import ModelProviderHandlers

        live = LiveConfig(self.config, self.catalog, self.models, self.manager)
        service = ConfigWriteService(live)
        ConfigWriteHandlers(service, self.skills, self.processor.sender).register(self.registry)
        ModelProviderHandlers(self.catalog, service).register(self.registry)

    async def _connection_closed(self, conn: Any) -> None:
        # Threads a departing client watched start their idle-unload clock; running turns
        # go on (their pending approvals wait for another subscriber or a resume).
        if not self.loaded:
            return
        self.host_fs.connection_closed(conn.id)
        self.host_exec.drop_connection(conn.id)
        self.host_search.connection_closed(conn.id)
        for thread in list(self.manager.loaded.values()):
            self.manager.maybe_schedule_unload(thread)
        # What only a client can answer (client tools, questions) fails once none is left.
        await self.manager.fail_unwatched_requests()

    def startup_warnings(self) -> list[dict[str, Any]]:
        """Problems found while loading config; each connection gets them after initialize."""
        warnings: list[dict[str, Any]] = []
        if self.config.get("model") is None and self.config.get("model_provider") is None:
            summary = (
                "No model is configured: using the built-in scripted provider (offline replay). "
                f"Set `model` and `model_provider` in {self.config.path} to use a real model."
            )
            log.warning("%s", summary)
            warnings.append({"summary": summary, "details": None})
        for problem in self._mcp_servers.warnings:
            log.warning("%s", problem)
            warnings.append({"summary": problem, "details": None})
        sandbox_warning = _sandbox_warning()
        if sandbox_warning is not None:
            log.warning("%s", sandbox_warning)
            warnings.append({"summary": sandbox_warning, "details": None})
        return warnings

    async def start(self) -> None:
        if self._run_task is None:
            self._run_task = asyncio.create_task(self.processor.run())

    def begin_drain(self) -> None:
        """From now on new requests get -32600 ``serverShuttingDown``; running work goes on."""
        self.processor.draining = True

    async def drain(self, timeout: float | None = None) -> bool:
        """Refuse new requests and wait until running work has finished. False when
        ``timeout`` passed first: the work still runs, and ``stop`` interrupts it."""
        self.begin_drain()

        async def idle() -> None:
            await self.processor.wait_idle()
            for wait in self.idle_waiters:
                await wait()

        try:
            await asyncio.wait_for(idle(), timeout)
        except TimeoutError:
            return False
        return True

    async def interrupt_work(self) -> None:
        """Interrupt every running turn (each records its end and sends ``turn/completed``
        with ``interrupted`` to whoever still listens), kill the process groups of the
        commands they ran, and flush the rollouts. Bounded by ``STOP_TURNS_S``; idempotent."""
        self.begin_drain()
        if self.loaded:
            from appserver.engine.tools import shell

            await self.manager.shutdown(timeout=STOP_TURNS_S)
            shell.kill_all_running()
            self.host_fs.close()

    async def stop(self) -> None:
        """Stop everything (``interrupt_work`` first if the caller has not), within about a
        second: pending server requests cancelled, handlers cancelled, clients and the index
        closed."""
        await self.interrupt_work()
        await self.processor.shutdown(timeout=STOP_TURNS_S)
        if self._run_task is not None:
            self._run_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._run_task
            self._run_task = None
        if self.loaded:
            if self._warmup is not None:
                self._warmup.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._warmup
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.models.aclose(), STOP_TURNS_S)
            self.store.close()


async def start_in_process(
    home: Path | str,
    *,
    overrides: list[str] | tuple[str, ...] = (),
    client_name: str = "appserver-embedded",
    client_version: str = "0.0.0",
    experimental_api: bool = False,
    opt_out_notification_methods: list[str] | None = None,
    channel_capacity: int = 128,
    ingress_capacity: int = 1024,
) -> InProcessClientHandle:
    """Start a whole server in this event loop and return a ready, initialized client."""
    from appserver.transports.in_process import InProcessClientHandle

    app = App(load_config(Path(home), overrides), ingress_capacity=ingress_capacity)
    await app.start()
    return await InProcessClientHandle.start(
        app.processor,
        client_name=client_name,
        client_version=client_version,
        experimental_api=experimental_api,
        opt_out_notification_methods=opt_out_notification_methods,
        channel_capacity=channel_capacity,
        on_shutdown=app.stop,
    )
