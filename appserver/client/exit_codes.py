"""The exit codes of ``appserver chat``.

* 0 — interactive session ended (``/quit``, ``/exit`` or end of input), or the ``-p`` turn
  completed;
* 1 — the ``-p`` turn failed or was interrupted, or the server refused ``thread/start`` /
  ``turn/start`` (the error is one line on stderr);
* 2 — usage errors, and the connection could not be made or was lost;
* 130 — quit with Ctrl-C.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_TURN_FAILED = 1
EXIT_CONNECTION = 2
EXIT_INTERRUPTED = 130
