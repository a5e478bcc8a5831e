"""The serve runtime: what ``appserver serve`` runs once its options are parsed.

Owns the event-loop choice (uvloop when available), the listeners (stdio, WebSocket, a Unix
socket) around one ``App``, signal handling (the first SIGINT/SIGTERM drains for up to
``drain_timeout``, a second stops at once; either way running turns are interrupted before the
transports close) and exit codes (``EXIT_*``). Startup problems (bad config, refused bind) are
raised as ``StartupError`` with a one-line message; the CLI (``appserver.cli``) prints it and
exits with ``EXIT_STARTUP``. The server's modules import lazily, inside ``run``, so that the
sandbox probe overlaps them. This module must never parse arguments (``appserver.cli`` does)
nor write to stdout: on stdio, stdout is the wire (the listen banners go to stderr).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from appserver.transports.ws_auth import JwtPolicy

log = logging.getLogger("appserver.server")


# Exit codes (README, "Stopping").
EXIT_OK = 0  # stdin EOF, or a signal and the drain finished
EXIT_STARTUP = 2  # bad usage, config or bind: one line on stderr
EXIT_DRAIN_TIMEOUT = 3  # the drain deadline passed: running turns were interrupted
# A second signal N stops at once: 128 + N (130 for SIGINT, 143 for SIGTERM).
DEFAULT_DRAIN_TIMEOUT_S = 30.0


class StartupError(Exception):
    """Refuse to start, with a message for the user."""


@dataclass
class ServeOptions:
    home: Path
    overrides: list[str]
    listen: str  # "stdio://", "ws://HOST:PORT", "unix://" or "unix://PATH"
    token_file: Path | None = None
    token_sha256: str | None = None
    allow_origins: list[str] = field(default_factory=list)
    max_message_bytes: int = 64 * 1024 * 1024
    max_line_bytes: int = 64 * 1024 * 1024
    ingress_capacity: int = 1024
    shared_secret_file: Path | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    max_clock_skew_s: int = 30
    drain_timeout: float = DEFAULT_DRAIN_TIMEOUT_S


def parse_ws_address(text: str) -> tuple[str, int]:
    """``:8765`` → 127.0.0.1:8765; ``HOST:PORT``; ``[::1]:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise StartupError(f"invalid WebSocket address {text!r}: expected HOST:PORT")
    host = host.strip("[]") or "127.0.0.1"
    if host == "localhost":
        host = "127.0.0.1"
    return host, int(port)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_token(opts: ServeOptions) -> tuple[str | None, bytes | None]:
    if opts.token_file is not None:
        try:
            token = opts.token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StartupError(f"cannot read --ws-token-file {opts.token_file}: {exc}") from None
        if not token:
            raise StartupError(f"--ws-token-file {opts.token_file} is empty")
        return token, None
    if opts.token_sha256 is not None:
        try:
            digest = bytes.fromhex(opts.token_sha256.strip())
        except ValueError:
            raise StartupError("--ws-token-sha256 must be 64 hex digits") from None
        if len(digest) != 32:
            raise StartupError("--ws-token-sha256 must be 64 hex digits")
        return None, digest
    return None, None


def _read_jwt_policy(opts: ServeOptions) -> JwtPolicy | None:
    """The signed-bearer policy from ``--ws-shared-secret-file`` (None when not configured)."""
    from appserver.transports.ws_auth import MIN_SECRET_BYTES, JwtPolicy

    if opts.shared_secret_file is None:
        if opts.jwt_issuer is not None or opts.jwt_audience is not None:
            raise StartupError("--ws-issuer and --ws-audience need --ws-shared-secret-file")
        return None
    try:
        secret = opts.shared_secret_file.read_bytes().strip()
    except OSError as exc:
        raise StartupError(
            f"cannot read --ws-shared-secret-file {opts.shared_secret_file}: {exc.strerror}"
        ) from None
    if len(secret) < MIN_SECRET_BYTES:
        raise StartupError(
            f"--ws-shared-secret-file {opts.shared_secret_file} must hold at least "
            f"{MIN_SECRET_BYTES} bytes"
        )
    return JwtPolicy(secret, opts.jwt_issuer, opts.jwt_audience, opts.max_clock_skew_s)


async def _serve(opts: ServeOptions) -> int:
    # The sandbox backend probes (child processes; App needs their answer for the startup
    # warnings) run while the server's modules import, not after them.
    from appserver.engine.tools import sandbox

    probe = threading.Thread(target=sandbox.backend, name="sandbox-probe", daemon=True)
    probe.start()
    from appserver.server.app import App
    from appserver.server.config import load_config

    probe.join()
    config = load_config(opts.home, opts.overrides)
    app = App(config, ingress_capacity=opts.ingress_capacity, lazy=True)
    await app.start()
    loop = asyncio.get_running_loop()
    stop_now = asyncio.Event()
    drain_requested = asyncio.Event()
    exit_code = EXIT_OK
    listener: Any = None

    def on_signal(signum: int) -> None:
        nonlocal exit_code
        if drain_requested.is_set():
            log.warning("second signal: stopping now")
            exit_code = 128 + signum
            stop_now.set()
            return
        log.warning(
            "signal received: draining for up to %g s (send it again to stop at once)",
            opts.drain_timeout,
        )
        app.begin_drain()
        if listener is not None:
            listener.drain()
        drain_requested.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, int(sig))

    if opts.listen.startswith("stdio"):
        from appserver.transports.stdio import serve_stdio

        main: Awaitable[Any] = serve_stdio(app.processor, max_line=opts.max_line_bytes)
    elif opts.listen.startswith("unix://"):
        main, listener = await _start_unix(app, opts)
    else:
        main, listener = await _start_ws(app, opts)
        if drain_requested.is_set():
            listener.drain()

    async def drain_then_stop() -> None:
        nonlocal exit_code
        await drain_requested.wait()
        if not await app.drain(opts.drain_timeout):
            log.warning(
                "drain deadline (%g s) passed: interrupting the running turns", opts.drain_timeout
            )
            exit_code = EXIT_DRAIN_TIMEOUT
        stop_now.set()

    serve_task = asyncio.ensure_future(main)
    drain_task = asyncio.ensure_future(drain_then_stop())
    stop_task = asyncio.ensure_future(stop_now.wait())
    await asyncio.wait({serve_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
    drain_task.cancel()
    stop_task.cancel()
    # Turns first, so their turn/completed (interrupted) is queued while clients are still
    # connected; then each transport lets its queue out (bounded) and closes.
    await app.interrupt_work()
    if listener is not None:
        await listener.close()
    serve_task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await asyncio.wait_for(serve_task, timeout=1.0)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(app.stop(), timeout=2)
    return exit_code


async def _start_ws(app: Any, opts: ServeOptions) -> tuple[Awaitable[Any], Any]:
    from appserver.transports.websocket import WebSocketListener, WebSocketOptions
    from appserver.transports.ws_auth import UpgradePolicy

    host, port = parse_ws_address(opts.listen.removeprefix("ws://"))
    token, digest = _read_token(opts)
    jwt_policy = _read_jwt_policy(opts)
    origins = frozenset(opts.allow_origins)
    policy = (
        UpgradePolicy(digest, origins, jwt_policy)
        if digest is not None
        else UpgradePolicy.from_token(token, origins, jwt_policy)
    )
    if not _is_loopback(host) and not policy.requires_auth:
        raise StartupError(
            f"refusing to start a non-loopback WebSocket listener on {host} without auth "
            "(use --ws-token-file, --ws-token-sha256 or --ws-shared-secret-file)"
        )
    listener = WebSocketListener(
        app.processor,
        WebSocketOptions(
            host=host, port=port, max_message_bytes=opts.max_message_bytes, policy=policy
        ),
    )
    try:
        await listener.start()
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc}") from None
    shown = f"[{host}]" if ":" in host else host
    base = f"{shown}:{listener.port}"
    print(
        "appserver (WebSockets)\n"
        f"  listening on: ws://{base}\n"
        f"  readyz: http://{base}/readyz\n"
        f"  healthz: http://{base}/healthz",
        file=sys.stderr,
        flush=True,
    )
    forever = asyncio.get_running_loop().create_future()
    return forever, listener


def unix_socket_path(listen: str, home: Path) -> Path:
    """The socket file of ``unix://PATH`` (relative to the current directory), or of bare
    ``unix://``: ``$APPSERVER_HOME/app-server-control/app-server-control.sock``, the place
    Codex uses under its home."""
    raw = listen.removeprefix("unix://")
    if not raw:
        from appserver.transports.unix_socket import default_socket_path

        return default_socket_path(home)
    return Path(os.path.abspath(Path(raw).expanduser()))


async def _start_unix(app: Any, opts: ServeOptions) -> tuple[Awaitable[Any], Any]:
    from appserver.transports.unix_socket import SocketInUse, UnixSocketListener
    from appserver.transports.websocket import WebSocketOptions

    path = unix_socket_path(opts.listen, opts.home)
    listener = UnixSocketListener(
        app.processor, path, WebSocketOptions(max_message_bytes=opts.max_message_bytes)
    )
    try:
        await listener.start()
    except SocketInUse as exc:
        raise StartupError(str(exc)) from None
    except OSError as exc:
        raise StartupError(f"cannot listen on unix://{path}: {exc.strerror or exc}") from None
    print(
        f"appserver (WebSockets over a Unix socket)\n  listening on: unix://{path}",
        file=sys.stderr,
        flush=True,
    )
    forever = asyncio.get_running_loop().create_future()
    return forever, listener


def run(opts: ServeOptions, loop_kind: str) -> int:
    """Serve until stdin EOF or a signal; returns the exit code (``EXIT_*``, or 128 + N after a
    second signal N). Raises ``StartupError`` (and the config's ``ConfigError``) before serving."""
    use_uvloop = False
    if loop_kind in ("auto", "uvloop"):
        try:
            import uvloop

            use_uvloop = True
        except ImportError:
            if loop_kind == "uvloop":
                raise StartupError("--loop uvloop: uvloop is not installed") from None
    try:
        if use_uvloop:
            return int(uvloop.run(_serve(opts)))
        return asyncio.run(_serve(opts))
    except KeyboardInterrupt:
        return 130
