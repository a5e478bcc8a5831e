"""Params models of the config-writing methods and the provider and feature views on config.

Owns the models of ``config/value/write``, ``config/batchWrite``, ``skills/config/write``,
``modelProvider/list``, ``modelProvider/config/write``, ``modelProvider/capabilities/read``,
``experimentalFeature/list`` and ``experimentalFeature/enablement/set``. Models only: no
behaviour. A field the schema lets a client send as ``null`` to clear, distinct from omitting
it, is read through ``model_fields_set`` by the handler.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from appserver.protocol.base import WireModel

MergeStrategy = Literal["replace", "upsert"]


class ConfigEditParams(WireModel):
    key_path: str
    value: Any
    merge_strategy: MergeStrategy


class ConfigValueWriteParams(ConfigEditParams):
    file_path: str | None = None
    expected_version: str | None = None


class ConfigBatchWriteParams(WireModel):
    edits: list[ConfigEditParams]
    file_path: str | None = None
    expected_version: str | None = None
    reload_user_config: bool = False


class SkillsConfigWriteParams(WireModel):
    enabled: bool
    name: str | None = None
    path: str | None = None


class ModelProviderListParams(WireModel):
    """No params in the schema; anything sent is ignored."""


class ModelProviderCapabilitiesReadParams(WireModel):
    """No params in the schema (the spec's ``modelProvider`` is read when present)."""

    model_provider: str | None = None


class ProviderSettingsPatch(WireModel):
    """The schema's ``ProviderSettingsPatch`` union, flattened over ``type``."""

    type: Literal["customGateway", "bedrock", "gcp"]
    provider_id: str | None = None
    name: str | None = None
    base_url: str | None = None
    env_key: str | None = None
    profile: str | None = None
    region: str | None = None
    credential_file: str | None = None
    location: str | None = None
    project_id: str | None = None


class ModelProviderConfigWriteParams(WireModel):
    settings: ProviderSettingsPatch


class ExperimentalFeatureListParams(WireModel):
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=0)
    thread_id: str | None = None


class ExperimentalFeatureEnablementSetParams(WireModel):
    enablement: dict[str, bool]
