"""Live reload: the running server takes a config file that was just written.

Owns ``LiveConfig``: ``validate`` runs the checks the server runs at startup (the config
file's own checks in ``with_overrides``, the model providers, the command policy) on a
candidate config, raising ``ConfigError`` as startup would; ``apply`` swaps the candidate in.
The shared ``LoadedConfig`` is updated in place, so every holder (``config/read``, the thread
handlers' defaults for new threads) sees the new values; the catalog's default provider and
model are derived again; the model clients of providers whose settings changed are rebuilt on
their next turn; new credentials are registered for redaction and their variables kept out of
commands. Runtime feature enablement (``experimentalFeature/enablement/set``) is laid over
the file's ``[features]`` again after every reload.

Loaded threads keep their session settings (model, provider id, policies), as in Codex; a
provider's new settings apply to their next turn too, since providers are looked up per turn.
It must never write a file, and never apply a config ``validate`` refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from appserver.engine.providers.config import (
    ProviderConfigError,
    ProviderInfo,
    credential_env_vars,
    credential_values,
    resolve_providers,
)
from appserver.engine.tools.command_policy import CommandPolicy
from appserver.engine.tools.environment import PolicyError
from appserver.server.config import ConfigError, LoadedConfig, with_overrides
from appserver.store import redaction

if TYPE_CHECKING:
    from appserver.engine.manager import ThreadManager
    from appserver.server.catalog import Catalog
    from appserver.server.models import ModelClients


def providers_of(config: LoadedConfig) -> dict[str, ProviderInfo]:
    try:
        return resolve_providers(config.values)
    except ProviderConfigError as exc:
        raise ConfigError(f"invalid config {config.path}: {exc}") from None


def command_policy_of(config: LoadedConfig) -> CommandPolicy:
    try:
        return CommandPolicy.from_config(config.values)
    except PolicyError as exc:
        raise ConfigError(f"invalid config {config.path}: {exc}") from None


class LiveConfig:
    def __init__(
        self,
        config: LoadedConfig,
        catalog: Catalog,
        models: ModelClients,
        manager: ThreadManager,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.models = models
        self.manager = manager
        # Process-wide feature switches set at runtime: feature name → enabled.
        self.runtime_features: dict[str, bool] = {}
        self.listeners: list[Callable[[LoadedConfig], None]] = []

    def validate(self, candidate: LoadedConfig) -> None:
        """Raise ``ConfigError`` if the server would refuse to start with ``candidate``, or
        if its default provider is not one it knows (every new thread would fail)."""
        providers = providers_of(candidate)
        command_policy_of(candidate)
        default = candidate.get("model_provider")
        if isinstance(default, str) and default not in providers:
            raise ConfigError(
                f"invalid config {candidate.path}: `model_provider` = {default!r} is not a "
                "configured provider (" + ", ".join(sorted(providers)) + ")"
            )

    def reload_file(self, file_values: dict[str, Any]) -> None:
        """Take ``file_values`` (config.toml as just written) with the running overrides."""
        cfg = self.config
        self.apply(with_overrides(cfg.home, cfg.path, file_values, cfg.overrides))

    def apply(self, candidate: LoadedConfig) -> None:
        providers = providers_of(candidate)
        commands = command_policy_of(candidate)
        for info in providers.values():
            redaction.KNOWN.register(*credential_values(info))
        cfg = self.config
        cfg.values = candidate.values
        cfg.origins = candidate.origins
        cfg.file_values = candidate.file_values
        self._lay_runtime_features()
        self.catalog.refresh(cfg, providers)
        self.models.update(providers)
        self.manager.commands = commands.scrubbing(credential_env_vars(providers, cfg.values))
        for listener in self.listeners:
            listener(cfg)

    def set_feature(self, name: str, enabled: bool) -> None:
        self.runtime_features[name] = enabled
        self._lay_runtime_features()

    def _lay_runtime_features(self) -> None:
        if not self.runtime_features:
            return
        features = self.config.values.get("features")
        if not isinstance(features, dict):
            features = self.config.values["features"] = {}
        features.update(self.runtime_features)
