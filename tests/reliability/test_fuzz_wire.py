"""Property-based fuzzing of framing and envelope over stdio, WebSocket and in-process.

Covers: random bytes, random text, arbitrary JSON values, request/notification/response
shapes with every member missing or of any JSON type (ids of every type, including the edges
of the 64-bit range and past them), several messages per write, nesting at and past the
decoder's depth limit, numbers past every range, duplicate keys, truncated lines, invalid
UTF-8 and control characters. For every input: the server answers each well-formed request
exactly once (a result, -32600 or -32001), answers nothing else, never puts a traceback on
the wire, and still answers a valid request afterwards; at the end the server's RSS has not
grown without bound. One server per transport serves all examples; ``APPSERVER_FULL_SOAK=1``
raises the example count from 200 to 5000 per transport.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from tests.harness import TRANSPORTS
from tests.reliability.conftest import scaled
from tests.reliability.fuzz_support import Session, payloads

EXAMPLES = scaled(200, 5000)
RSS_GROWTH_LIMIT = 64 * 1024 * 1024


@pytest.fixture(scope="module", params=TRANSPORTS)
def session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Session]:
    s = Session(str(request.param), tmp_path_factory.mktemp("fuzz-wire"))
    s.rss_start = s.rss(s.server_pid())
    try:
        yield s
    finally:
        s.close()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(payload=payloads)
def test_any_input_leaves_the_connection_usable(session: Session, payload: bytes) -> None:
    session.run(session.ledger.send(payload))


def test_memory_stayed_bounded(session: Session) -> None:
    ledger = session.ledger
    assert ledger.examples >= EXAMPLES // 2
    end = session.rss(session.server_pid())
    start = session.rss_start
    print(
        f"\nfuzz-wire {session.transport}: {ledger.examples} inputs, {ledger.requests} requests, "
        f"{ledger.messages} messages"
        + (f", RSS {start / 2**20:.1f} -> {end / 2**20:.1f} MiB" if start and end else ""),
        file=sys.stderr,
    )
    if start is not None and end is not None:
        assert end - start < RSS_GROWTH_LIMIT
