"""Every registered method names the wire type of its reply, and its handler says so.

Covers: each ``MethodSpec.result`` is a type of ``protocol.wire_types`` (generated from the
schema) or of ``protocol.wire_extra`` (the experimental replies the schema leaves out), and
the handler's return annotation is that type, so ``mypy --strict`` checks the reply against
it. Handlers that still send their reply by hand (``NO_REPLY``, annotated ``Any``) are only
held to the first rule.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from appserver.protocol import wire_extra, wire_types
from appserver.server.app import App
from appserver.server.config import load_config


def test_every_method_names_its_wire_result(home: Path) -> None:
    app = App(load_config(home, []))
    specs = list(app.registry)
    assert len(specs) > 30
    for spec in specs:
        assert spec.result, f"{spec.name}: no result type named"
        assert hasattr(wire_types, spec.result) or hasattr(wire_extra, spec.result), (
            f"{spec.name}: {spec.result} is neither in wire_types nor in wire_extra"
        )
        returns = inspect.unwrap(spec.handler).__annotations__.get("return")
        if returns != "Any":
            assert returns == spec.result, f"{spec.name}: the handler returns {returns}"
