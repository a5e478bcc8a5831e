"""The generated wire types (``appserver/protocol/wire_types.py``) and their vendored schema.

Covers: the checked-in module is exactly what ``scripts/gen_wire_types.py`` renders from
``scripts/schema/`` (regenerate when the schema changes); the vendored schema files equal the
reference copy (skipped when ``/work/shared/reference/schema`` or ``../shared`` is absent);
the types cover every notification and server request of the schema; and serving never
imports the module (its TypedDicts are for ``mypy`` only, imported under ``TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
GENERATOR = ROOT / "scripts" / "gen_wire_types.py"
OUTPUT = ROOT / "appserver" / "protocol" / "wire_types.py"
REFERENCE_DIRS = (
    Path("/work/shared/reference/schema"),
    ROOT.parent / "shared" / "reference" / "schema",
)


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_wire_types", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_module_matches_the_vendored_schema() -> None:
    expected = _generator().render()
    assert OUTPUT.read_text(encoding="utf-8") == expected, (
        "appserver/protocol/wire_types.py drifted from scripts/schema/: "
        "run python scripts/gen_wire_types.py"
    )


def test_vendored_schema_equals_the_reference() -> None:
    reference = next((d for d in REFERENCE_DIRS if d.is_dir()), None)
    if reference is None:
        pytest.skip("no reference schema here (/work/shared/reference/schema, ../shared)")
    gen = _generator()
    for name in gen.SCHEMA_FILES:
        vendored = (gen.SCHEMA_DIR / name).read_bytes()
        assert vendored == (reference / name).read_bytes(), f"scripts/schema/{name} differs"


def test_every_notification_and_server_request_has_its_params_type() -> None:
    from appserver.protocol import wire_types

    tables = (wire_types.SERVER_NOTIFICATIONS, wire_types.SERVER_REQUESTS)
    for table in tables:
        for method, params in table.items():
            assert params is None or hasattr(wire_types, params), method
    for name in ("Thread", "Turn", "ThreadItem", "ThreadStartResponse", "TurnStartResponse"):
        assert hasattr(wire_types, name)


def test_serving_does_not_import_the_wire_types() -> None:
    probe = (
        "import sys\n"
        "import appserver.server.app, appserver.engine.manager, appserver.engine.turn_runner\n"
        "import appserver.server.handlers.threads, appserver.server.views\n"
        "print('appserver.protocol.wire_types' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
