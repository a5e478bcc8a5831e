"""What every command the agent runs gets: its environment policy and its time limit.

Owns ``CommandPolicy``, read once from the config: the ``[shell_environment_policy]`` table
(see ``environment.py``), the provider variables it must scrub, and the time limits. A call
without ``timeout_ms`` runs at most ``default_command_timeout_ms`` (Codex's
``DEFAULT_EXEC_COMMAND_TIMEOUT_MS``, 10 s); a model-given ``timeout_ms`` wins but is capped at
``max_command_timeout_ms`` (10 min by default). It must never let a command run without a
time limit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from appserver.engine.tools.environment import EnvironmentPolicy, PolicyError

DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 600_000


def _positive_ms(config: Mapping[str, Any], key: str, default: int) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise PolicyError(f"{key} must be a positive whole number of milliseconds")
    return value


@dataclass(frozen=True)
class CommandPolicy:
    environment: EnvironmentPolicy = field(default_factory=EnvironmentPolicy)
    default_timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_timeout_ms: int = MAX_TIMEOUT_MS

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], provider_vars: Iterable[str] = ()
    ) -> CommandPolicy:
        """Read the policy from config.toml's values; ``PolicyError`` names a bad key."""
        environment = EnvironmentPolicy.from_config(
            config.get("shell_environment_policy"), provider_vars
        )
        default = _positive_ms(config, "default_command_timeout_ms", DEFAULT_TIMEOUT_MS)
        largest = _positive_ms(config, "max_command_timeout_ms", MAX_TIMEOUT_MS)
        return cls(environment, min(default, largest), largest)

    def scrubbing(self, provider_vars: Iterable[str]) -> CommandPolicy:
        """This policy, also removing ``provider_vars`` (the providers' credential names)."""
        names = self.environment.provider_vars | frozenset(provider_vars)
        return replace(self, environment=replace(self.environment, provider_vars=names))

    def timeout_ms(self, requested: Any) -> int:
        """The limit for one call: the model's positive ``timeout_ms`` capped at the
        maximum, else the default."""
        if isinstance(requested, int) and not isinstance(requested, bool) and requested > 0:
            return min(requested, self.max_timeout_ms)
        return self.default_timeout_ms

    def env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        return self.environment.build(base)
