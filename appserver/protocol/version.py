"""Version numbers: this server's own and the Codex protocol's it implements.

Owns the two constants and nothing else. It must never import anything: ``appserver
--version`` reads it, every layer may, and start-up time matters.
"""

# This package's version (``appserver.__version__`` re-exports it; keep it equal to
# pyproject.toml's ``version``).
APPSERVER_VERSION = "0.1.0"

# The Codex protocol version we implement and report in ``userAgent``. Clients such as the
# official Python SDK parse it and refuse versions older than the features they use.
PROTOCOL_VERSION = "0.169.0"
