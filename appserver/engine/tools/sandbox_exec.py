"""The sandbox launcher: confine this process as told, then exec the command.

Run as ``python -I -c <boot> <confinement-json> -- argv...`` (see
``sandbox.launcher_argv``); ``-I`` keeps the working directory (the workspace, which the
command may have filled) and ``PYTHON*`` variables out of the imports that run before the
confinement holds. It applies :func:`appserver.engine.tools.confine.apply`, restores the
default dispositions of the signals Python ignores (``SIGPIPE``, ``SIGXFSZ``), and replaces
itself with the command.

It must never exec the command when any part of the confinement failed: it prints why and
exits with status 126 instead.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import NoReturn

from appserver.engine.tools import confine

__all__ = ["CONFINE_FAILED", "main"]

CONFINE_FAILED = 126


def _fail(message: str, status: int) -> NoReturn:
    sys.stderr.write(f"appserver sandbox: {message}\n")
    sys.stderr.flush()
    os._exit(status)


def main(args: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if args is None else args
    if len(args) < 3 or args[1] != "--":
        _fail("usage: <confinement-json> -- command [args...]", 2)
    spec_text, command = args[0], args[2:]
    try:
        spec = confine.Confinement.from_json(spec_text)
        confine.apply(spec)
    except Exception as exc:  # whatever failed, the command must not run
        _fail(f"cannot confine the command, not running it: {exc}", CONFINE_FAILED)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    try:
        os.execvp(command[0], command)
    except OSError as exc:
        status = 127 if isinstance(exc, FileNotFoundError) else 126
        _fail(f"{command[0]}: {exc.strerror}", status)


if __name__ == "__main__":
    main()
