"""Host APIs for clients: files (``fs/*``), commands (``command/exec*``), fuzzy file search.

Layer: may import ``protocol``, ``store`` and ``engine.tools``; the server's handlers
(``appserver/server/handlers/host_*.py``) call it. Every path and every command goes through
:mod:`appserver.host.boundary` first.
"""
