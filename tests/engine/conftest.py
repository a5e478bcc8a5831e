"""Engine tests share the root fixtures (``model``, ``home``, ``transport``); ``write_config``
and ``ENV`` (a home configured to use the mock model) come from ``tests.support.config`` and
are re-exported here for the tests that import them from this module."""

from __future__ import annotations

from tests.support.config import ENV, write_config

__all__ = ["ENV", "write_config"]
