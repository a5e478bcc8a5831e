"""Params models of the runtime's own methods: handshake, discovery, config, account.

Owns the pydantic models of ``initialize``, ``model/list``, ``config/read``, ``account/read``,
``account/login/start``, ``account/login/cancel``, ``account/logout`` and
``mock/experimentalMethod``. Models only: no behaviour, no defaults that depend on config.
"""

from __future__ import annotations

from typing import Any, Literal

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


LoginType = Literal[
    "apiKey",
    "chatgpt",
    "chatgptDeviceCode",
    "chatgptAuthTokens",
    "amazonBedrock",
    "amazonBedrockAccessKeys",
]


class LoginAccountParams(WireModel):
    """The schema's ``LoginAccountParams`` union, flattened: only the ``apiKey`` variant is
    served, and its one field is checked by the handler (``missing field `apiKey```), so an
    error never quotes a key and every field stays visible to the params fuzzer. Fields of the
    refused variants are ignored, never read."""

    type: LoginType
    api_key: str | None = None


class CancelLoginAccountParams(WireModel):
    login_id: str


class LogoutAccountParams(WireModel):
    """``account/logout`` takes no params (the schema's ``null``); ``{}`` is accepted too."""


class MockExperimentalMethodParams(WireModel):
    value: Any = None
