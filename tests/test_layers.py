"""The layers hold without exceptions: each package imports only the layers below it.

Every ``import`` in ``appserver/`` counts, wherever it is: at module level, inside a function
(lazy imports), under ``if TYPE_CHECKING:``, relative (``from .x import y``) or through
``importlib.import_module("appserver...")`` with a literal name. The table is ARCHITECTURE.md's
(a test checks the two agree). A package that is in no layer fails the test: a new package
(``appserver/host/``, ``appserver/engine/mcp/``, ``appserver/cluster/``, ...) is placed in the
table, here and in ARCHITECTURE.md, before it lands.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "appserver"

# Which layer each module belongs to: the longest matching prefix wins. Rooms named by
# ARCHITECTURE.md for work still to come are listed too, so they land in a known layer.
LAYER_OF: dict[str, str] = {
    "appserver": "root",  # the package's own __init__: the version re-exports only
    "appserver.protocol": "protocol",
    "appserver.core": "core",
    "appserver.transports": "transports",
    "appserver.store": "store",
    "appserver.store.postgres": "store",  # to come: the PostgreSQL store
    "appserver.engine": "engine",
    "appserver.engine.mcp": "engine",  # to come: the MCP client
    "appserver.host": "host",  # host APIs: fs, command/exec, fuzzy search
    "appserver.server": "server",
    "appserver.cluster": "server",  # to come: cross-node fan-out
    "appserver.client": "client",
    "appserver.cli": "top",
    "appserver.__main__": "top",
    "appserver.tools": "top",  # README tooling (not the agent's tools: engine.tools)
}

# What each layer may import besides itself. "top" may import anything; nothing below may
# import "top" or "root" (the version numbers live in protocol.version).
ALLOWED: dict[str, frozenset[str]] = {
    "protocol": frozenset(),
    "core": frozenset({"protocol"}),
    "transports": frozenset({"core", "protocol"}),
    "store": frozenset({"protocol"}),
    "engine": frozenset({"protocol", "store"}),
    "host": frozenset({"protocol", "store", "engine"}),
    "server": frozenset({"protocol", "core", "transports", "store", "engine", "host"}),
    "client": frozenset({"protocol", "transports"}),
    "root": frozenset({"protocol"}),
    "top": frozenset(set(LAYER_OF.values())),
}


@dataclass(frozen=True)
class Import:
    source: str  # the importing module
    target: str  # the imported module (or the package an imported name belongs to)
    line: int


def layer_of(module: str) -> str | None:
    """The layer of ``module``, or None when no prefix but the bare package matches."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix in LAYER_OF and (prefix != "appserver" or module == "appserver"):
            return LAYER_OF[prefix]
    return None


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str, root: Path) -> bool:
    base = root.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(source: str, module: str, is_package: bool, root: Path) -> list[Import]:
    """Every import of an ``appserver`` module in ``source``, wherever it stands."""
    found: list[Import] = []

    def add(target: str, node: ast.AST) -> None:
        if target == "appserver" or target.startswith("appserver."):
            found.append(Import(module, target, getattr(node, "lineno", 0)))

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                here = module.split(".") if is_package else module.split(".")[:-1]
                base = here[: len(here) - (node.level - 1)]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                # ``from appserver.engine import manager`` imports a module; ``from appserver
                # import __version__`` imports a name of the package itself.
                sub = f"{origin}.{alias.name}"
                add(sub if _is_module(sub, root) else origin, node)
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("import_module", "__import__") and node.args:
                arg = node.args[0]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    add(arg.value, node)
    return found


def violations(root: Path) -> list[str]:
    """One line per import that goes against the table, or per module in no layer."""
    problems: list[str] = []
    for path in sorted((root / "appserver").rglob("*.py")):
        module = module_name(path, root)
        layer = layer_of(module)
        where = path.relative_to(root)
        if layer is None:
            problems.append(f"{where}: {module} is in no layer (add it to the layer table)")
            continue
        source = path.read_text(encoding="utf-8")
        for imp in imports_of(source, module, path.name == "__init__.py", root):
            target = layer_of(imp.target)
            if target == layer:
                continue
            if target is None or target not in ALLOWED[layer]:
                problems.append(
                    f"{where}:{imp.line}: {layer} imports {imp.target} ({target or 'no layer'})"
                )
    return problems


def test_every_import_follows_the_layer_table() -> None:
    assert violations(ROOT) == []


def test_architecture_md_shows_the_same_table() -> None:
    """ARCHITECTURE.md's layer table (``| layer | packages | may import |``) says what this
    test enforces, row for row."""
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    text = text.split("\n## Layers\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, frozenset[str]] = {}
    packages: dict[str, set[str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not line.lstrip().startswith("| `"):
            continue
        layer = cells[0].strip("`")
        allowed = set(re.findall(r"`([\w.]+)`", cells[2]))
        rows[layer] = frozenset(allowed)
        packages[layer] = {f"appserver.{p}" for p in re.findall(r"`([\w./]+)`", cells[1])}
    expected = {layer: allowed for layer, allowed in ALLOWED.items() if layer != "top"}
    assert {k: v for k, v in rows.items() if k != "top"} == expected
    documented = {_dotted(p): layer for layer, paths in packages.items() for p in paths}
    assert set(documented) == set(LAYER_OF)
    assert {mod: layer_of(mod) for mod in documented} == documented


def _dotted(path: str) -> str:
    """``appserver.engine/mcp/`` → ``appserver.engine.mcp``; ``appserver.__init__.py`` →
    ``appserver``."""
    return path.replace("/", ".").rstrip(".").removesuffix(".py").removesuffix(".__init__")


# The checker itself, on a throw-away package: it must see what it claims to see.


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@pytest.mark.parametrize(
    ("rel", "text", "expected"),
    [
        ("appserver/core/a.py", "from appserver.server import app\n", "core imports"),
        (
            "appserver/engine/a.py",
            "def f():\n    from appserver.server.app import App\n    return App\n",
            "engine imports appserver.server.app",
        ),
        (
            "appserver/protocol/a.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            "    from appserver.engine.manager import ThreadManager\n",
            "protocol imports appserver.engine.manager",
        ),
        ("appserver/store/a.py", "from .. import server\n", "store imports appserver.server"),
        ("appserver/client/a.py", "from appserver import __version__\n", "(root)"),
        (
            "appserver/transports/a.py",
            "import importlib\nimportlib.import_module('appserver.engine.manager')\n",
            "transports imports appserver.engine.manager",
        ),
        ("appserver/server/a.py", "import appserver.cli\n", "server imports appserver.cli"),
        ("appserver/host/a.py", "import appserver.server.app\n", "host imports"),
        ("appserver/engine/mcp/a.py", "import appserver.host.fs\n", "engine imports"),
        ("appserver/newthing/a.py", "", "in no layer"),
    ],
)
def test_the_checker_sees_each_kind_of_import(
    tmp_path: Path, rel: str, text: str, expected: str
) -> None:
    _write(
        tmp_path,
        {
            "appserver/__init__.py": "",
            "appserver/cli.py": "",
            "appserver/server/__init__.py": "",
            "appserver/server/app.py": "",
            "appserver/engine/__init__.py": "",
            "appserver/engine/manager.py": "",
            "appserver/host/__init__.py": "",
            "appserver/host/fs.py": "",
            rel: text,
        },
    )
    (problem,) = violations(tmp_path)
    assert expected.replace("(root)", "imports appserver (root)") in problem, problem


def test_the_checker_allows_what_the_table_allows(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "appserver/__init__.py": "from appserver.protocol.version import PROTOCOL_VERSION\n",
            "appserver/protocol/__init__.py": "",
            "appserver/protocol/version.py": "",
            "appserver/engine/__init__.py": "",
            "appserver/engine/tools/__init__.py": "from . import sandbox\n",
            "appserver/engine/tools/sandbox.py": "from ...protocol import version\n",
            "appserver/host/__init__.py": "import appserver.engine.tools.sandbox\n",
            "appserver/server/__init__.py": "from appserver.host import fs\n",
            "appserver/host/fs.py": "from appserver.store import rollout\n",
            "appserver/store/__init__.py": "",
            "appserver/store/rollout.py": "",
            "appserver/cli.py": "import appserver.server\nimport appserver.client\n",
            "appserver/client/__init__.py": "from appserver.transports import stdio\n",
            "appserver/transports/__init__.py": "",
            "appserver/transports/stdio.py": "from appserver.core import processor\n",
            "appserver/core/__init__.py": "",
            "appserver/core/processor.py": "",
        },
    )
    assert violations(tmp_path) == []
