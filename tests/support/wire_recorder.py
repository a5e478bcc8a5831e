"""The wire recorder: every message the server emits during the test run, checked against the
official protocol schema.

Owns ``RECORDER``, fed by ``tests/harness.py`` (``WireClient`` notes each message it sends and
each one it receives, over all three transports) and by the SDK tests (the official SDK's own
reads and writes). Each received message is checked at once:

* its envelope: a JSON object without ``"jsonrpc"``; request ids are strings or integers; a
  response carries exactly one of ``result`` / ``error`` (an object with an integer ``code``
  and a string ``message``); notifications and server requests carry object ``params``, and
  a notification may carry the schema's top-level integer ``emittedAtMs``;
* a notification's params against the SDK's model for its method
  (``openai_codex.generated.notification_registry``, generated from the official schema);
* a server request's params against its params model (the SDK's v2 models do not include the
  server-request params, so ``SERVER_REQUEST_MODELS`` below writes those we emit out from the
  schema's definitions, built on the SDK's own nested types);
* a successful response against the response model of the method its request named (request
  id → method is tracked per client and per id type); ``initialize`` against the SDK's
  ``InitializeResponse`` and the SDK's own metadata and runtime-version checks.

Validation is strict JSON validation (no string-to-number coercion and the like), so what
passes is what a serde client accepts; fields a model does not know are allowed where the
generated model allows them (the default), refused where it forbids them.

Methods with no model in the schema (our experimental test method) are counted as
unmodelled, not as mismatches. When the SDK is not importable the recorder is off and says so;
``tests/conftest.py`` prints the summary line and fails the run on any mismatch.
"""

from __future__ import annotations

import os
import threading
import typing
import weakref
from collections import Counter, deque
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

Id = tuple[str, object]  # (type name, value): 1 and "1" are different ids
Problems = list[tuple[str, str, str]]  # (kind, method, detail)


@dataclass(frozen=True, slots=True)
class Mismatch:
    test: str
    kind: str
    method: str
    detail: str
    message: str


class _Models:
    """The SDK's generated models, indexed by method."""

    def __init__(self) -> None:
        from openai_codex.generated import v2_all
        from openai_codex.generated.notification_registry import NOTIFICATION_MODELS
        from openai_codex.models import InitializeResponse

        self.initialize = InitializeResponse
        self.notifications: dict[str, type[BaseModel]] = dict(NOTIFICATION_MODELS)
        for member in typing.get_args(v2_all.ServerNotification.model_fields["root"].annotation):
            method = typing.get_args(member.model_fields["method"].annotation)[0]
            params = member.model_fields["params"].annotation
            if isinstance(params, type) and issubclass(params, BaseModel):
                self.notifications.setdefault(method, params)
        # Stable in the schema (``ThreadSectionChangedNotification``), missing from the SDK.
        self.notifications.setdefault(
            "thread/section/changed",
            create_model(
                "ThreadSectionChangedNotification",
                __config__=ConfigDict(extra="forbid"),
                threadId=(str, ...),
                sectionId=(str | None, ...),
            ),
        )
        # Response models: the schema names each method's response after its params
        # (``ThreadStartParams`` → ``ThreadStartResponse``).
        self.responses: dict[str, type[BaseModel] | None] = {}
        for member in typing.get_args(v2_all.ClientRequest.model_fields["root"].annotation):
            method = typing.get_args(member.model_fields["method"].annotation)[0]
            params = member.model_fields["params"].annotation
            name = getattr(params, "__name__", "")
            response = getattr(v2_all, name.removesuffix("Params") + "Response", None)
            self.responses[method] = response if isinstance(response, type) else None
        # Methods whose params the schema types ``null`` name no params model to go by.
        for method, name in {
            "account/logout": "LogoutAccountResponse",
            "configRequirements/read": "ConfigRequirementsReadResponse",
            # Both config writes answer the schema's one ``ConfigWriteResponse``.
            "config/value/write": "ConfigWriteResponse",
            "config/batchWrite": "ConfigWriteResponse",
        }.items():
            response = getattr(v2_all, name, None)
            if self.responses.get(method) is None and isinstance(response, type):
                self.responses[method] = response
        # The experimental ``thread/search``: the SDK models its items (``ThreadSearchResult``)
        # but not its response; assemble that as Codex defines it (a page of results).
        search_result = getattr(v2_all, "ThreadSearchResult", None)
        if self.responses.get("thread/search") is None and isinstance(search_result, type):
            self.responses["thread/search"] = create_model(
                "ThreadSearchResponse",
                __config__=ConfigDict(extra="forbid"),
                data=(list[search_result], ...),  # type: ignore[valid-type]
                nextCursor=(str | None, None),
                backwardsCursor=(str | None, None),
            )
        self.responses.update(_experimental_responses(v2_all))
        self.server_requests = _server_request_models(v2_all)


def _model_provider_summary() -> type[BaseModel]:
    """The schema's ``ModelProviderSummary`` (its ``settings`` union checked by tag)."""
    strict = ConfigDict(extra="forbid")
    auth = Annotated[
        create_model("NoneGatewayAuth", __config__=strict, mode=(Literal["none"], ...))
        | create_model(
            "EnvGatewayAuth",
            __config__=strict,
            mode=(Literal["environmentVariable"], ...),
            envKey=(str, ...),
        )
        | create_model(
            "ExternalGatewayAuth",
            __config__=strict,
            mode=(Literal["externallyConfigured"], ...),
            envKey=(str | None, None),
        ),
        Field(discriminator="mode"),
    ]
    settings = Annotated[
        create_model("OpenaiProviderSettings", __config__=strict, type=(Literal["openai"], ...))
        | create_model(
            "CustomGatewayProviderSettings",
            __config__=strict,
            type=(Literal["customGateway"], ...),
            auth=(auth, ...),
        ),
        Field(discriminator="type"),
    ]
    return create_model(
        "ModelProviderSummary",
        __config__=strict,
        id=(str, ...),
        name=(str, ...),
        baseUrl=(str | None, None),
        canEdit=(bool, ...),
        settings=(settings, ...),
    )


def _experimental_responses(v2: Any) -> dict[str, type[BaseModel] | None]:
    """Responses of experimental methods the stock clients call, which the SDK's stable
    models leave out: assembled from the schema's own item types where it has them
    (``CollaborationModeMask``, ``ThreadReadState``), else from the reference's observed
    replies (``observed-0.169.md``, the clients' captures)."""
    strict = ConfigDict(extra="forbid")
    return {
        "collaborationMode/list": create_model(
            "CollaborationModeListResponse",
            __config__=strict,
            data=(list[v2.CollaborationModeMask], ...),
        ),
        "thread/readState/update": create_model(
            "ThreadReadStateUpdateResponse", __config__=strict, readState=(v2.ThreadReadState, ...)
        ),
        "account/bedrock/checkGovCloudRequirements": create_model(
            "CheckGovCloudRequirementsResponse",
            __config__=strict,
            isGovCloud=(bool, ...),
            shouldWarn=(bool, ...),
        ),
        "thread/settings/update": create_model("ThreadSettingsUpdateResponse", __config__=strict),
        # Stable in the schema, missing from the SDK's models: the schema's shapes.
        "modelProvider/list": create_model(
            "ModelProviderListResponse",
            __config__=strict,
            data=(list[_model_provider_summary()], ...),  # type: ignore[misc]
            defaultProviderId=(str, ...),
            canChangeDefault=(bool, ...),
        ),
        "modelProvider/config/write": create_model(
            "ModelProviderConfigWriteResponse",
            __config__=strict,
            provider=(_model_provider_summary(), ...),
        ),
        # Stable, but the schema has no response: its items are the session notifications'
        # ``FuzzyFileSearchResult`` (protocol.wire_extra.FuzzyFileSearchResponse).
        "fuzzyFileSearch": create_model(
            "FuzzyFileSearchResponse",
            __config__=strict,
            files=(list[v2.FuzzyFileSearchResult], ...),
        ),
        "thread/backgroundTerminals/list": create_model(
            "ThreadBackgroundTerminalsListResponse",
            __config__=strict,
            data=(list[dict[str, Any]], ...),
            nextCursor=(str | None, None),
        ),
    }


def _server_request_models(v2: Any) -> dict[str, type[BaseModel] | None]:
    """Params models of the schema's server requests (``ServerRequest.json``).

    The requests this server sends are written out from the schema's definitions
    (``CommandExecutionRequestApprovalParams``, ``FileChangeRequestApprovalParams``,
    ``DynamicToolCallParams``, ``ToolRequestUserInputParams``,
    ``PermissionsRequestApprovalParams``); the others are known by name only.
    """

    class NetworkApprovalContext(BaseModel):
        host: str
        protocol: v2.NetworkApprovalProtocol

    class NetworkPolicyAmendment(BaseModel):
        action: Literal["allow", "deny"]
        host: str

    class CommandExecutionRequestApprovalParams(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        thread_id: Annotated[str, Field(alias="threadId")]
        turn_id: Annotated[str, Field(alias="turnId")]
        item_id: Annotated[str, Field(alias="itemId")]
        started_at_ms: Annotated[int, Field(alias="startedAtMs")]
        approval_id: Annotated[str | None, Field(alias="approvalId")] = None
        command: str | None = None
        command_actions: Annotated[list[v2.CommandAction] | None, Field(alias="commandActions")] = (
            None
        )
        cwd: v2.LegacyAppPathString | None = None
        environment_id: Annotated[str | None, Field(alias="environmentId")] = None
        kind: Literal["command", "writeStdin", "humanCommand"] = "command"
        network_approval_context: Annotated[
            NetworkApprovalContext | None, Field(alias="networkApprovalContext")
        ] = None
        proposed_execpolicy_amendment: Annotated[
            list[str] | None, Field(alias="proposedExecpolicyAmendment")
        ] = None
        proposed_network_policy_amendments: Annotated[
            list[NetworkPolicyAmendment] | None, Field(alias="proposedNetworkPolicyAmendments")
        ] = None
        reason: str | None = None

    class FileChangeRequestApprovalParams(BaseModel):
        model_config = ConfigDict(populate_by_name=True)
        thread_id: Annotated[str, Field(alias="threadId")]
        turn_id: Annotated[str, Field(alias="turnId")]
        item_id: Annotated[str, Field(alias="itemId")]
        started_at_ms: Annotated[int, Field(alias="startedAtMs")]
        grant_root: Annotated[str | None, Field(alias="grantRoot")] = None
        reason: str | None = None

    strict = ConfigDict(extra="forbid", populate_by_name=True)

    class DynamicToolCallParams(BaseModel):
        model_config = strict
        thread_id: Annotated[str, Field(alias="threadId")]
        turn_id: Annotated[str, Field(alias="turnId")]
        call_id: Annotated[str, Field(alias="callId")]
        namespace: str | None = None
        tool: str
        arguments: Any

    class ToolRequestUserInputOption(BaseModel):
        model_config = strict
        label: str
        description: str

    class ToolRequestUserInputQuestion(BaseModel):
        model_config = strict
        id: str
        header: str
        question: str
        is_other: Annotated[bool, Field(alias="isOther")] = False
        is_secret: Annotated[bool, Field(alias="isSecret")] = False
        options: list[ToolRequestUserInputOption] | None = None

    class ToolRequestUserInputParams(BaseModel):
        model_config = strict
        thread_id: Annotated[str, Field(alias="threadId")]
        turn_id: Annotated[str, Field(alias="turnId")]
        item_id: Annotated[str, Field(alias="itemId")]
        is_blocking: Annotated[bool, Field(alias="isBlocking")]
        questions: list[ToolRequestUserInputQuestion]
        auto_resolution_ms: Annotated[int | None, Field(alias="autoResolutionMs", ge=0)] = None

    class PermissionsRequestApprovalParams(BaseModel):
        model_config = strict
        thread_id: Annotated[str, Field(alias="threadId")]
        turn_id: Annotated[str, Field(alias="turnId")]
        item_id: Annotated[str, Field(alias="itemId")]
        started_at_ms: Annotated[int, Field(alias="startedAtMs")]
        cwd: v2.LegacyAppPathString
        environment_id: Annotated[str | None, Field(alias="environmentId")] = None
        permissions: v2.RequestPermissionProfile
        reason: str | None = None

    models: dict[str, type[BaseModel] | None] = {
        "item/commandExecution/requestApproval": CommandExecutionRequestApprovalParams,
        "item/fileChange/requestApproval": FileChangeRequestApprovalParams,
        "item/tool/call": DynamicToolCallParams,
        "item/tool/requestUserInput": ToolRequestUserInputParams,
        "item/permissions/requestApproval": PermissionsRequestApprovalParams,
    }
    for name in (
        "mcpServer/elicitation/request",
        "account/chatgptAuthTokens/refresh",
        "attestation/generate",
        "applyPatchApproval",
        "execCommandApproval",
    ):
        models[name] = None
    return models


def _is_id(value: object) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _id_key(value: object) -> Id:
    return (type(value).__name__, value)


def _short(msg: object, limit: int = 400) -> str:
    text = orjson.dumps(msg, default=repr).decode(errors="replace")
    return text if len(text) <= limit else text[:limit] + "…"


class WireRecorder:
    """Thread-safe: the official SDK reads on its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # client → request id → methods in flight (weak: a closed client's leftovers go)
        self._pending: weakref.WeakKeyDictionary[object, dict[Id, deque[str]]] = (
            weakref.WeakKeyDictionary()
        )
        self._partial: weakref.WeakKeyDictionary[object, bytes] = weakref.WeakKeyDictionary()
        self.validated = 0
        self.skipped = 0
        self.methods: Counter[str] = Counter()
        self.unmodelled: Counter[str] = Counter()
        self.mismatches: list[Mismatch] = []
        self.models: _Models | None = None
        self.off_reason: str | None = None
        try:
            self.models = _Models()
        except Exception as exc:  # the SDK is missing or changed shape
            self.off_reason = f"openai-codex models not importable ({type(exc).__name__}: {exc})"

    @property
    def on(self) -> bool:
        return self.models is not None

    # --- what clients send (to know which method a response answers) ---

    def sent(self, client: object, msg: object) -> None:
        if not self.on or not isinstance(msg, dict):
            return
        method, rid = msg.get("method"), msg.get("id")
        if isinstance(method, str) and _is_id(rid):
            with self._lock:
                per_client = self._pending.setdefault(client, {})
                per_client.setdefault(_id_key(rid), deque()).append(method)

    def sent_raw(self, client: object, data: bytes, *, stream: bool = False) -> None:
        """Raw bytes a client wrote. ``stream``: a byte stream (stdio), where a line may be
        split over several writes; otherwise each write holds whole lines."""
        if not self.on:
            return
        if stream:
            with self._lock:
                data = self._partial.pop(client, b"") + data
                data, _, rest = data.rpartition(b"\n")
                if rest:
                    self._partial[client] = rest
        for line in data.split(b"\n"):
            try:
                self.sent(client, orjson.loads(line))
            except orjson.JSONDecodeError:
                continue

    # --- what the server emits ---

    def received(self, client: object, msg: object) -> None:
        if self.models is None:
            return
        if isinstance(msg, dict) and set(msg) == {"lagged"}:
            with self._lock:  # the in-process client's synthetic gap marker, not a message
                self.skipped += 1
            return
        problems: Problems = []
        if not isinstance(msg, dict):
            method: str | None = None
            problems.append(("envelope", "?", "not a JSON object"))
        elif "jsonrpc" in msg:
            method = None
            problems.append(("envelope", str(msg.get("method", "?")), 'has a "jsonrpc" member'))
        elif "method" in msg:
            method = self._check_outgoing(msg, problems)
        else:
            method = self._check_response(client, msg, problems)
        test = os.environ.get("PYTEST_CURRENT_TEST", "?").rsplit(" ", 1)[0]
        with self._lock:
            self.validated += 1
            if method is not None:
                self.methods[method] += 1
            for kind, where, detail in problems:
                self.mismatches.append(Mismatch(test, kind, where, detail, _short(msg)))

    def _check_outgoing(self, msg: dict[str, Any], problems: Problems) -> str | None:
        """A notification or a server request."""
        assert self.models is not None
        method = msg["method"]
        if not isinstance(method, str):
            problems.append(("envelope", "?", "method is not a string"))
            return None
        params = msg.get("params")
        if not isinstance(params, dict):
            problems.append(("envelope", method, "params is not an object"))
            return method
        if "id" in msg:
            if not _is_id(msg["id"]):
                problems.append(("envelope", method, "request id is not a string or integer"))
            if set(msg) - {"id", "method", "params", "trace"}:
                problems.append(("envelope", method, f"extra members {sorted(msg)}"))
            if method not in self.models.server_requests:
                problems.append(("server request", method, "not in the schema"))
            else:
                model = self.models.server_requests[method]
                self._validate("server request", method, model, params, problems)
            return method
        if set(msg) - {"method", "params", "emittedAtMs"}:
            problems.append(("envelope", method, f"extra members {sorted(msg)}"))
        stamp = msg.get("emittedAtMs", 0)
        if not isinstance(stamp, int) or isinstance(stamp, bool):
            problems.append(("envelope", method, "emittedAtMs is not an integer"))
        if method not in self.models.notifications:
            problems.append(("notification", method, "not in the schema"))
        else:
            model = self.models.notifications[method]
            self._validate("notification", method, model, params, problems)
        return method

    def _check_response(
        self, client: object, msg: dict[str, Any], problems: Problems
    ) -> str | None:
        assert self.models is not None
        rid = msg.get("id")
        if not _is_id(rid):
            problems.append(("envelope", "?", f"response id {rid!r} is not a string or integer"))
        has_result, has_error = "result" in msg, "error" in msg
        if has_result == has_error:
            problems.append(("envelope", "?", "a response needs exactly one of result / error"))
            return None
        if set(msg) - {"id", "result", "error"}:
            problems.append(("envelope", "?", f"extra members {sorted(msg)}"))
        with self._lock:
            per_client = self._pending.get(client, {})
            queue = per_client.get(_id_key(rid)) if _is_id(rid) else None
            answered = queue.popleft() if queue else None
            if queue is not None and not queue:
                per_client.pop(_id_key(rid), None)
        if has_error:
            error = msg["error"]
            code = error.get("code") if isinstance(error, dict) else None
            if (
                not isinstance(error, dict)
                or not isinstance(error.get("message"), str)
                or not isinstance(code, int)
                or isinstance(code, bool)
            ):
                detail = "error needs an integer code and a string message"
                problems.append(("envelope", answered or "?", detail))
            return answered
        if answered is None:
            problems.append(("response", "?", "a result for no request this client sent"))
            return None
        if answered == "initialize":
            self._check_initialize(msg["result"], problems)
        elif answered not in self.models.responses:
            with self._lock:
                self.unmodelled[answered] += 1
        else:
            model = self.models.responses[answered]
            self._validate("response", answered, model, msg["result"], problems)
        return answered

    def _validate(
        self,
        kind: str,
        method: str,
        model: type[BaseModel] | None,
        value: object,
        problems: Problems,
    ) -> None:
        if model is None:
            with self._lock:
                self.unmodelled[method] += 1
            return
        try:
            model.model_validate_json(orjson.dumps(value), strict=True)
        except ValidationError as exc:
            detail = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
            problems.append((kind, method, f"{model.__name__}: {detail}"))

    def _check_initialize(self, result: object, problems: Problems) -> None:
        from openai_codex._initialize_metadata import validate_initialize_metadata
        from openai_codex._runtime_requirements import require_runtime_version

        assert self.models is not None
        try:
            parsed = self.models.initialize.model_validate_json(orjson.dumps(result), strict=True)
            validate_initialize_metadata(parsed)
            version = parsed.serverInfo.version if parsed.serverInfo else None
            require_runtime_version((version or "").split()[0] if version else None)
        except (ValidationError, RuntimeError, ValueError) as exc:
            problems.append(("response", "initialize", str(exc)[:300]))

    # --- the report ---

    def summary(self) -> str:
        if not self.on:
            return f"wire recorder: off — {self.off_reason}"
        line = (
            f"wire recorder: {self.validated} messages of {len(self.methods)} distinct methods "
            f"validated, {len(self.mismatches)} mismatches"
        )
        if self.unmodelled:
            line += f" (no schema model, envelope only: {', '.join(sorted(self.unmodelled))})"
        return line


RECORDER = WireRecorder()
