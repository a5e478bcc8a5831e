"""Shared bits of the security tests: a config writer and a file-content search."""

from __future__ import annotations

from pathlib import Path


def write_config(home: Path, base_url: str, extra: str = "", provider_extra: str = "") -> None:
    (home / "config.toml").write_text(
        f"""
model = "mock-model"
model_provider = "mock"
approval_policy = "never"
sandbox_mode = "danger-full-access"
{extra}

[model_providers.mock]
name = "Mock provider"
base_url = "{base_url}"
wire_api = "responses"
env_key = "MOCK_ACCESS"
request_max_retries = 0
stream_max_retries = 0
{provider_extra}
""",
        encoding="utf-8",
    )


def files_containing(root: Path, needles: list[str]) -> list[tuple[Path, str]]:
    found = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            found += [(path, n) for n in needles if n.encode() in data]
    return found
