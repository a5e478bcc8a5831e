"""Benchmarks of an app-server, driven from a client in its own process (``python -m bench``).

Owns the harness: spawning the server under test (ours by default, any other with
``--server-cmd`` / ``--ws-url``), the synchronous stdio and WebSocket clients, the streaming
worker processes, the loopback HTTP model (``bench/model.py``), the statistics and the report
(a table on stdout, JSON under ``bench/results/``). It must never run as part of the test
suite, never talk to anything but loopback, never sleep to synchronise (the slow reader's
10 ms pacing and the 1 s idle wait before reading RSS are measurements, not synchronisation),
and never stop a process it did not start.
"""
