"""The protocol coverage table: every stable client method of Codex 0.169.0 and our status.

Owns the list of stable method names (``methods_stable.json``, names only, taken from the
official schema) and ``coverage_markdown(registry)``, which renders the README's table from the
server's own method registry so the two cannot drift (a test compares them). A method we do
not implement gets the reference's unknown-method reply (-32600 ``Invalid request: unknown
variant ...``), never a hang.
"""

from __future__ import annotations

import json
from importlib import resources

from appserver.protocol.registry import MethodRegistry


def stable_methods() -> list[str]:
    data = json.loads(
        resources.files("appserver.protocol").joinpath("methods_stable.json").read_text()
    )
    return [str(m) for m in data["ClientRequest"]]


def coverage_markdown(registry: MethodRegistry) -> str:
    implemented = set(registry.names()) | {"initialize"}
    rows = ["| method | status |", "| --- | --- |"]
    for name in stable_methods():
        status = "implemented" if name in implemented else "not yet (-32600 unknown variant)"
        rows.append(f"| `{name}` | {status} |")
    extra = sorted(implemented - set(stable_methods()))
    for name in extra:
        spec = registry.get(name)
        flag = " (experimental)" if spec is not None and spec.experimental else ""
        rows.append(f"| `{name}` | implemented{flag} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    import tempfile
    from pathlib import Path

    from appserver.server.app import App
    from appserver.server.config import LoadedConfig

    with tempfile.TemporaryDirectory() as tmp:
        app = App(LoadedConfig(home=Path(tmp), path=Path(tmp) / "config.toml", values={}))
        print(coverage_markdown(app.registry), end="")
