"""Tools a turn can use on the local machine: shell commands, file patches, the sandbox.

This package owns the mechanics (running, confining, patching); it must never talk to the
client or decide approvals: the engine's turn logic does that and calls in here.
"""
