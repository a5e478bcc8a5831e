"""Config-write fixtures: the engine's mock model server (real HTTP on 127.0.0.1)."""

from tests.engine.conftest import model

__all__ = ["model"]
