"""After ``App.load``, the first methods' params validators are built between requests
(``server/warmup.py``), and ``App.stop`` ends that task whatever its state."""

from __future__ import annotations

import asyncio
from pathlib import Path

from appserver.protocol.registry import MethodRegistry
from appserver.server.app import App
from appserver.server.config import load_config
from appserver.server.warmup import FIRST_METHODS, start_warmup


def _built(registry: MethodRegistry, name: str) -> bool:
    spec = registry.get(name)
    assert spec is not None, name
    # rebuild() answers None once the schema is built (and would build it otherwise).
    return spec._adapter is not None and spec._adapter.rebuild() is None


def test_load_builds_the_first_methods_validators_then_calls_then(tmp_path: Path) -> None:
    async def run() -> None:
        app = App(load_config(tmp_path))
        calls: list[str] = []
        task = start_warmup(app.registry, then=lambda: calls.append("then"))
        assert task is not None
        await asyncio.wait_for(task, timeout=60)
        assert calls == ["then"]
        for name in FIRST_METHODS:
            if app.registry.get(name) is not None:
                assert _built(app.registry, name), name
        await app.stop()

    asyncio.run(run())


def test_stop_cancels_a_running_warmup(tmp_path: Path) -> None:
    async def run() -> None:
        app = App(load_config(tmp_path))
        assert app._warmup is not None
        await asyncio.wait_for(app.stop(), timeout=30)
        assert app._warmup.done()

    asyncio.run(run())


def test_outside_a_loop_then_runs_at_once() -> None:
    calls: list[int] = []
    assert start_warmup(MethodRegistry(), then=lambda: calls.append(1)) is None
    assert calls == [1]
