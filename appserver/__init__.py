"""appserver: a Python server for the Codex app-server protocol.

This module only re-exports the version numbers (they live in ``appserver.protocol.version``,
which every layer may import); it must never import the rest of the package (start-up time
matters, and ``appserver --version`` should cost nothing). The layers and what each may
import: ARCHITECTURE.md.
"""

from appserver.protocol.version import APPSERVER_VERSION as __version__
from appserver.protocol.version import PROTOCOL_VERSION

__all__ = ["PROTOCOL_VERSION", "__version__"]
