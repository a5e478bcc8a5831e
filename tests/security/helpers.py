"""Shared bits of the security tests: a config writer and a file-content search."""

from __future__ import annotations

from pathlib import Path

from tests.support import config


def write_config(home: Path, base_url: str, extra: str = "", provider_extra: str = "") -> None:
    """The common mock-model config, its key in ``MOCK_ACCESS`` (a name that does not look
    like a secret, so only its being a configured ``env_key`` hides it)."""
    config.write_config(
        home, base_url, env_key="MOCK_ACCESS", extra=extra, provider_extra=provider_extra
    )


def files_containing(root: Path, needles: list[str]) -> list[tuple[Path, str]]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(path, n) for n in needles if n.encode() in data]
    return found
