"""The command line: ``appserver serve`` (stdio, WebSocket or a Unix socket), ``chat``,
``--version``, Codex aliases.

Owns the declarations (click): commands, options, usage errors, and the wiring of the layers
below, which never import each other sideways: ``serve`` hands ``ServeOptions`` to the server's
runtime (``appserver.server.serve``, which owns the event loop, signals and exit codes), and
``chat`` hands the client (``appserver.client``) a way to start an in-process server, so the
client never imports the server. Startup errors (bad config, refused bind) are one line on
stderr and exit code 2, never a traceback. This module sits above every layer and may import
any of them, lazily where start-up time matters: ``serve`` never loads the client, and
``--version`` loads neither the client nor the server's ``App``. It must never write to
stdout except ``--version`` and ``--help``: on stdio, stdout is the wire.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from appserver.protocol.version import APPSERVER_VERSION, PROTOCOL_VERSION
from appserver.server.serve import (
    DEFAULT_DRAIN_TIMEOUT_S,
    EXIT_STARTUP,
    ServeOptions,
    StartupError,
)
from appserver.server.serve import run as run_server

if TYPE_CHECKING:
    from appserver.client.transport import EmbeddedServer

_serve_options = [
    click.option("--stdio", "stdio", is_flag=True, help="Serve one client over stdin/stdout."),
    click.option("--ws", "ws", metavar="HOST:PORT", help="Serve WebSocket (':8765' = loopback)."),
    click.option(
        "--listen",
        "listen",
        metavar="URL",
        help="Codex-style: stdio://, ws://IP:PORT, unix:// or unix://PATH.",
    ),
    click.option(
        "-c",
        "--config",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="Override a config key (TOML value).",
    ),
    click.option(
        "--home",
        type=click.Path(path_type=Path),
        default=None,
        help="Home directory (default $APPSERVER_HOME, else ~/.appserver).",
    ),
    click.option(
        "--log-level",
        default="info",
        show_default=True,
        type=click.Choice(["debug", "info", "warning", "error"]),
    ),
    click.option(
        "--log-format", default="text", show_default=True, type=click.Choice(["text", "json"])
    ),
    click.option(
        "--loop",
        "loop_kind",
        default="auto",
        show_default=True,
        type=click.Choice(["auto", "asyncio", "uvloop"]),
    ),
    click.option(
        "--ws-token-file",
        type=click.Path(path_type=Path),
        default=None,
        help="WebSocket capability token: clients send 'Authorization: Bearer <token>'.",
    ),
    click.option(
        "--ws-token-sha256",
        default=None,
        metavar="HEX",
        help="Like --ws-token-file, but holding only the token's SHA-256 digest.",
    ),
    click.option(
        "--ws-shared-secret-file",
        type=click.Path(path_type=Path),
        default=None,
        help="WebSocket signed bearer tokens: HS256 JWTs signed with this secret (>= 32 bytes).",
    ),
    click.option(
        "--ws-issuer",
        default=None,
        metavar="ISS",
        help="Require this `iss` claim in WebSocket JWTs.",
    ),
    click.option(
        "--ws-audience",
        default=None,
        metavar="AUD",
        help="Require this `aud` claim in WebSocket JWTs.",
    ),
    click.option(
        "--ws-max-clock-skew-seconds",
        default=30,
        show_default=True,
        type=click.IntRange(min=0),
        help="Leeway for the `exp` and `nbf` claims of WebSocket JWTs.",
    ),
    click.option(
        "--allow-origin",
        "allow_origins",
        multiple=True,
        metavar="ORIGIN",
        help="Accept WebSocket requests carrying this Origin (others get 403).",
    ),
    click.option(
        "--max-message-bytes",
        default=64 * 1024 * 1024,
        show_default=True,
        type=int,
        help="Largest WebSocket message accepted.",
    ),
    click.option(
        "--max-line-bytes",
        default=64 * 1024 * 1024,
        show_default=True,
        type=int,
        help="Largest stdio line accepted; longer lines are dropped.",
    ),
    click.option(
        "--drain-timeout",
        default=DEFAULT_DRAIN_TIMEOUT_S,
        show_default=True,
        type=click.FloatRange(min=0),
        metavar="SECONDS",
        help="After SIGINT/SIGTERM, how long running turns may finish before being interrupted.",
    ),
    click.option(
        "--ingress-capacity",
        default=1024,
        show_default=True,
        type=click.IntRange(min=1),
        help="Messages queued per connection before a request gets -32001 'Server overloaded'.",
    ),
]


def _with_serve_options(fn: Any) -> Any:
    for opt in reversed(_serve_options):
        fn = opt(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(
    APPSERVER_VERSION,
    "-V",
    "--version",
    prog_name="appserver",
    message=f"%(prog)s %(version)s (Codex app-server protocol {PROTOCOL_VERSION})",
)
@click.option(
    "-c",
    "--config",
    "global_overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key (Codex-compatible position).",
)
@click.pass_context
def cli(ctx: click.Context, global_overrides: tuple[str, ...]) -> None:
    """appserver: a server for the Codex app-server protocol."""
    ctx.obj = list(global_overrides)


def _serve_command(
    ctx: click.Context,
    stdio: bool,
    ws: str | None,
    listen: str | None,
    overrides: tuple[str, ...],
    home: Path | None,
    log_level: str,
    log_format: str,
    loop_kind: str,
    ws_token_file: Path | None,
    ws_token_sha256: str | None,
    ws_shared_secret_file: Path | None,
    ws_issuer: str | None,
    ws_audience: str | None,
    ws_max_clock_skew_seconds: int,
    allow_origins: tuple[str, ...],
    max_message_bytes: int,
    max_line_bytes: int,
    ingress_capacity: int,
    drain_timeout: float,
) -> None:
    from appserver.server.config import ConfigError, default_home
    from appserver.server.logs import setup_logging

    setup_logging(log_level, log_format)
    chosen = [x for x in (stdio and "stdio://", ws and f"ws://{ws}", listen) if x]
    if len(chosen) > 1:
        raise click.UsageError("choose one of --stdio, --ws and --listen")
    target = chosen[0] if chosen else "stdio://"
    if not target.startswith(("stdio", "ws://", "unix://")):
        raise click.UsageError(
            f"unsupported --listen URL {target!r} (stdio://, ws://IP:PORT, unix:// or unix://PATH)"
        )
    opts = ServeOptions(
        home=(home or default_home()).expanduser(),
        overrides=[*(ctx.obj or []), *overrides],
        listen=target,
        token_file=ws_token_file,
        token_sha256=ws_token_sha256,
        allow_origins=list(allow_origins),
        max_message_bytes=max_message_bytes,
        max_line_bytes=max_line_bytes,
        ingress_capacity=ingress_capacity,
        shared_secret_file=ws_shared_secret_file,
        jwt_issuer=ws_issuer,
        jwt_audience=ws_audience,
        max_clock_skew_s=ws_max_clock_skew_seconds,
        drain_timeout=drain_timeout,
    )
    try:
        code = run_server(opts, loop_kind)
    except (StartupError, ConfigError) as exc:
        click.echo(f"appserver: {exc}", err=True)
        sys.exit(EXIT_STARTUP)
    sys.exit(code)


@cli.command("serve")
@_with_serve_options
@click.pass_context
def serve(ctx: click.Context, /, **kwargs: Any) -> None:
    """Serve the protocol over stdio (default) or WebSocket."""
    _serve_command(ctx, **kwargs)


@cli.command("app-server", hidden=True)
@_with_serve_options
@click.pass_context
def app_server(ctx: click.Context, /, **kwargs: Any) -> None:
    """Codex-compatible alias of ``serve`` (``<bin> --config k=v app-server --listen URL``)."""
    _serve_command(ctx, **kwargs)


@cli.command("chat")
@click.option("-p", "--prompt", metavar="PROMPT", help="Run one turn, print the final text, exit.")
@click.option(
    "--server-cmd", metavar="CMD", help="Spawn this server command and speak JSONL over its stdio."
)
@click.option("--ws", "ws_url", metavar="URL", help="Connect to a ws:// server.")
@click.option(
    "--token-file",
    type=click.Path(path_type=Path),
    default=None,
    help="With --ws: send 'Authorization: Bearer <token>' read from this file.",
)
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    default=None,
    help="In-process server's home (default $APPSERVER_HOME, else ~/.appserver).",
)
@click.option(
    "-c",
    "--config",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="In-process server: override a config key (TOML value).",
)
@click.option(
    "--json", "json_mode", is_flag=True, help='Print every wire message as {"dir","msg"} lines.'
)
@click.option(
    "--approve",
    type=click.Choice(["accept", "decline"]),
    default=None,
    help="Answer every approval this way (default: ask; -p without a terminal declines).",
)
@click.option("--cwd", type=click.Path(path_type=Path), default=None, help="Thread cwd.")
@click.option("--model", default=None, help="Thread model.")
@click.option(
    "--approval-policy",
    type=click.Choice(["untrusted", "on-failure", "on-request", "never"]),
    default=None,
)
@click.option(
    "--sandbox",
    type=click.Choice(["read-only", "workspace-write", "danger-full-access"]),
    default=None,
)
@click.pass_context
def chat(ctx: click.Context, /, overrides: tuple[str, ...], **kwargs: Any) -> None:
    """Chat with a server: in-process (default), --server-cmd or --ws."""
    from appserver.client.chat import ChatOptions, UsageProblem, run_chat

    opts = ChatOptions(
        overrides=[*(ctx.obj or []), *overrides], start_server=_start_embedded, **kwargs
    )
    try:
        opts.check()
    except UsageProblem as exc:
        raise click.UsageError(str(exc)) from None
    sys.exit(run_chat(opts))


async def _start_embedded(home: Path | None, overrides: list[str]) -> EmbeddedServer:
    """``chat``'s in-process server: an ``App`` over ``home`` (default ``$APPSERVER_HOME``, else
    ``~/.appserver``) and a client handle on it. Config and home problems become the client's
    one-line ``ConnectError``."""
    from appserver.client.transport import ConnectError, EmbeddedServer
    from appserver.server.app import App
    from appserver.server.config import ConfigError, default_home, load_config
    from appserver.transports.in_process import InProcessClientHandle

    home = (home or default_home()).expanduser()
    try:
        app = App(load_config(home, overrides))
    except ConfigError as exc:
        raise ConnectError(str(exc)) from None
    except OSError as exc:
        raise ConnectError(f"cannot use home {home}: {exc.strerror or exc}") from None
    await app.start()
    return EmbeddedServer(InProcessClientHandle.connect(app.processor, on_shutdown=app.stop), home)


def main() -> None:
    cli(prog_name="appserver")
