"""A client of our own: connections to a server and the ``appserver chat`` terminal client.

Owns the client side of the protocol: ``transport`` (stdio child process, WebSocket URL or an
in-process server, all as plain message dicts), ``session`` (request ids, replies, the wire
log, the handshake), ``console`` (terminal input and output) and ``chat`` (turns, rendering,
approvals, exit codes). This package is a layer of its own: it may import ``protocol`` and
``transports`` only (the in-process server is started by a function the top-level CLI gives
it), and nothing but the CLI may import it (``appserver serve`` never loads it).
"""
