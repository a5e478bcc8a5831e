"""Params models of the runtime's own methods: handshake, discovery, config, account.

Owns the pydantic models of ``initialize``, ``model/list``, ``config/read``, ``account/read``
and ``mock/experimentalMethod``. Models only: no behaviour, no defaults that depend on config.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from appserver.protocol.base import WireModel


class ClientInfo(WireModel):
    name: str
    title: str | None = None
    version: str


class InitializeCapabilities(WireModel):
    experimental_api: bool = False
    opt_out_notification_methods: list[str] | None = None
    request_attestation: bool = False


class InitializeParams(WireModel):
    client_info: ClientInfo
    capabilities: InitializeCapabilities | None = None


class ModelListParams(WireModel):
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=0)
    include_hidden: bool | None = None
    model_provider: str | None = None


class ConfigReadParams(WireModel):
    include_layers: bool = False
    cwd: str | None = None


class GetAccountParams(WireModel):
    refresh_token: bool = False


class MockExperimentalMethodParams(WireModel):
    value: Any = None
