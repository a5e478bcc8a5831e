"""Store layer: thread persistence.

``rollout`` writes and reads the append-only JSONL file of each thread, ``history``
interprets its lines (turns, model history, token usage, metadata), and ``index`` keeps
the ``$CODEX_HOME`` layout plus a SQLite index over thread metadata for fast listing.

The rollout files are the source of truth; the index is a cache reconciled with them on
every open. This layer never speaks the wire protocol and never touches the network.
"""
