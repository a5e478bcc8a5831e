"""The indexed metadata of one persisted thread (``ThreadRecord``).

Owns the record's fields and their meaning. Must never: know about SQLite, files or the wire.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class ThreadRecord:
    """Indexed metadata of one persisted thread.

    ``source`` is the SessionSource string (``"vscode"``, ``"cli"``, ...); structured
    sources (``{"subAgent": ...}``) are kept as their compact JSON text.
    """

    id: str
    path: Path
    created_at: int
    updated_at: int
    cwd: str
    model_provider: str
    model: str | None = None
    preview: str = ""
    name: str | None = None
    archived: bool = False
    source: str = "vscode"
    cli_version: str = ""
    forked_from_id: str | None = None
    git_info: dict[str, Any] | None = None
