"""Reliability fixtures: the full-run switch (the mock model is the root ``model`` fixture).

``APPSERVER_FULL_SOAK=1`` turns the bounded CI versions of the soak, crash loop and fuzz
runs into the full ones (200 clients for 60 s, 25 kill -9 rounds, thousands of fuzz
examples); see the README section on guarantees under load, faults and bad input.
"""

from __future__ import annotations

import os

FULL = os.environ.get("APPSERVER_FULL_SOAK") == "1"


def scaled(ci: int, full: int) -> int:
    """``ci`` normally, ``full`` with ``APPSERVER_FULL_SOAK=1``."""
    return full if FULL else ci
