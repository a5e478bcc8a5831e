"""appserver: a Python server for the Codex app-server protocol.

This module owns the version numbers only; it must never import the rest of the package
(start-up time matters, and ``appserver --version`` should cost nothing).
"""

__version__ = "0.1.0"

# The Codex protocol version we implement and report in ``userAgent``. Clients such as the
# official Python SDK parse it and refuse versions older than the features they use.
PROTOCOL_VERSION = "0.169.0"
