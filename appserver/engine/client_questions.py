"""The model asking the user through the client: ``request_user_input`` (questions, answered by
``item/tool/requestUserInput``) and ``request_permissions`` (more sandbox access, granted by
``item/permissions/requestApproval``).

Owns both tools' specs, offered only when the thread's ``config`` switches them on as Codex's
keys do (``tools.experimental_request_user_input.enabled``, ``features.request_permissions_tool``),
the requests in the reference's shape (every question gets ``isOther: true``; the thread shows
``waitingOnUserInput`` / ``waitingOnApproval`` meanwhile), and what an answer means: the answers
go back to the model as JSON; granted permissions widen the thread's sandbox policy for the
turn (``scope: "turn"``, undone when it ends) or for the session. It must never grant more than
was asked, nor anything a policy cannot express without widening it further (a write grant on a
read-only thread is refused, since read-only cannot hold one root without the workspace), and
never leave the model waiting on a client that has gone (``client_requests``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, cast

import orjson

from appserver.engine.client_requests import ClientOps, ClientUnavailable, ask_client
from appserver.engine.providers.events import ToolCall
from appserver.engine.thread_state import ActiveTurn, LoadedThread, now_ms

if TYPE_CHECKING:
    from appserver.protocol.wire_types import (
        PermissionsRequestApprovalParams,
        RequestPermissionProfile,
        ToolRequestUserInputParams,
        ToolRequestUserInputQuestion,
    )

REQUEST_USER_INPUT = "request_user_input"
REQUEST_PERMISSIONS = "request_permissions"
MAX_QUESTIONS = 3

_STRING = {"type": "string"}
_PATHS = {"type": "array", "items": _STRING}

TOOLS: dict[str, dict[str, Any]] = {
    REQUEST_USER_INPUT: {
        "type": "function",
        "name": REQUEST_USER_INPUT,
        "description": (
            "Ask the user one to three short questions and wait for the answers. Give each "
            "question 2-3 mutually exclusive options, the recommended one first; the client "
            "adds a free-form answer itself."
        ),
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {
                "questions": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "id": _STRING,
                            "header": _STRING,
                            "question": _STRING,
                            "options": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {"label": _STRING, "description": _STRING},
                                    "required": ["label", "description"],
                                    "additionalProperties": False,
                                },
                            },
                        },
                        "required": ["id", "header", "question"],
                        "additionalProperties": False,
                    },
                }
            },
            "required": ["questions"],
            "additionalProperties": False,
        },
    },
    REQUEST_PERMISSIONS: {
        "type": "function",
        "name": REQUEST_PERMISSIONS,
        "description": (
            "Request additional filesystem or network permissions from the user and wait for "
            "the client to grant a subset of them. Granted permissions apply to later commands "
            "in this turn, or for the rest of the session if the user says so."
        ),
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {
                "reason": _STRING,
                "permissions": {
                    "type": "object",
                    "properties": {
                        "network": {
                            "type": "object",
                            "properties": {"enabled": {"type": "boolean"}},
                            "additionalProperties": False,
                        },
                        "file_system": {
                            "type": "object",
                            "properties": {"read": _PATHS, "write": _PATHS},
                            "additionalProperties": False,
                        },
                    },
                    "additionalProperties": False,
                },
            },
            "required": ["permissions"],
            "additionalProperties": False,
        },
    },
}

# Turn id → (thread, the sandbox policy before a turn-scoped grant), undone when it ends.
_turn_grants: dict[str, tuple[LoadedThread, dict[str, Any]]] = {}


def model_specs(thread: LoadedThread) -> list[dict[str, Any]]:
    switches = thread.settings.tools
    names = [REQUEST_USER_INPUT] if switches.request_user_input else []
    if switches.request_permissions:
        names.append(REQUEST_PERMISSIONS)
    return [TOOLS[name] for name in names]


def handles(thread: LoadedThread, call: ToolCall) -> bool:
    return call.raw_item.get("namespace") is None and call.name in {
        t["name"] for t in model_specs(thread)
    }


def _args(call: ToolCall) -> dict[str, Any]:
    try:
        value = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


async def execute(ops: ClientOps, call: ToolCall) -> str:
    if call.name == REQUEST_USER_INPUT:
        return await _user_input(ops, call)
    return await _permissions(ops, call)


# -- request_user_input ---------------------------------------------------------------------


def _questions(raw: Any) -> list[dict[str, Any]] | str:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_QUESTIONS:
        return f"request_user_input needs 1 to {MAX_QUESTIONS} questions"
    out = []
    for q in raw:
        if not isinstance(q, dict) or not all(
            isinstance(q.get(k), str) for k in ("id", "header", "question")
        ):
            return "each question needs string `id`, `header` and `question`"
        options = q.get("options")
        kept = None
        if isinstance(options, list):
            kept = [
                {"label": o["label"], "description": o["description"]}
                for o in options
                if isinstance(o, dict)
                and isinstance(o.get("label"), str)
                and isinstance(o.get("description"), str)
            ]
        out.append(
            {
                "id": q["id"],
                "header": q["header"],
                "question": q["question"],
                "isOther": True,
                "isSecret": False,
                "options": kept or None,
            }
        )
    return out


def _answers(result: Any) -> dict[str, Any] | None:
    answers = result.get("answers") if isinstance(result, dict) else None
    if not isinstance(answers, dict):
        return None
    out: dict[str, Any] = {}
    for key, value in answers.items():
        given = value.get("answers") if isinstance(value, dict) else None
        if isinstance(given, list) and all(isinstance(a, str) for a in given):
            out[str(key)] = {"answers": given}
    return out


async def _user_input(ops: ClientOps, call: ToolCall) -> str:
    questions = _questions(_args(call).get("questions"))
    if isinstance(questions, str):
        return questions
    params: ToolRequestUserInputParams = {
        "threadId": ops.thread.id,
        "turnId": ops.turn.id,
        "itemId": call.call_id,
        "questions": cast("list[ToolRequestUserInputQuestion]", questions),
        "isBlocking": True,
    }
    try:
        result = await ask_client(ops, "item/tool/requestUserInput", params, "waitingOnUserInput")
    except ClientUnavailable:
        return "request_user_input was cancelled before receiving a response"
    answers = _answers(result)
    if answers is None:
        return "request_user_input got no usable answer from the user"
    return orjson.dumps({"answers": answers}).decode()


# -- request_permissions --------------------------------------------------------------------


def _paths(value: Any, cwd: str) -> list[str]:
    if not isinstance(value, list):
        return []
    return [os.path.normpath(os.path.join(cwd, p)) for p in value if isinstance(p, str) and p]


def _requested(args: dict[str, Any], cwd: str) -> dict[str, Any]:
    """The permissions asked for, in the wire's shape (``RequestPermissionProfile``)."""
    raw = args.get("permissions")
    raw = raw if isinstance(raw, dict) else {}
    out: dict[str, Any] = {}
    network = raw.get("network")
    if isinstance(network, dict) and isinstance(network.get("enabled"), bool):
        out["network"] = {"enabled": network["enabled"]}
    fs = raw.get("file_system", raw.get("fileSystem"))
    if isinstance(fs, dict):
        read, write = _paths(fs.get("read"), cwd), _paths(fs.get("write"), cwd)
        if read or write:
            out["fileSystem"] = {"read": read or None, "write": write or None}
    return out


def _granted(answer: Any, asked: dict[str, Any], cwd: str) -> tuple[dict[str, Any], str]:
    """What the client granted, cut down to what was asked; and its scope."""
    scope = answer.get("scope") if isinstance(answer, dict) else None
    given = answer.get("permissions") if isinstance(answer, dict) else None
    given = given if isinstance(given, dict) else {}
    out: dict[str, Any] = {}
    network = given.get("network")
    if (
        isinstance(network, dict)
        and network.get("enabled") is True
        and asked.get("network", {}).get("enabled") is True
    ):
        out["network"] = {"enabled": True}
    fs = given.get("fileSystem")
    asked_fs = asked.get("fileSystem") or {}
    if isinstance(fs, dict):
        for key in ("read", "write"):
            allowed = set(asked_fs.get(key) or [])
            paths = [p for p in _paths(fs.get(key), cwd) if p in allowed]
            if paths:
                out.setdefault("fileSystem", {})[key] = paths
    return out, "session" if scope == "session" else "turn"


def _widen(
    policy: dict[str, Any], granted: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The policy with the grant applied, and the part of the grant it could hold."""
    kind = policy.get("type")
    if kind in ("dangerFullAccess", "externalSandbox"):
        return policy, granted  # already allowed
    applied: dict[str, Any] = {}
    widened = dict(policy)
    if granted.get("network"):
        widened["networkAccess"] = True
        applied["network"] = {"enabled": True}
    fs = granted.get("fileSystem") or {}
    if fs.get("read"):
        applied.setdefault("fileSystem", {})["read"] = fs["read"]  # reads are not confined
    if fs.get("write") and kind == "workspaceWrite":
        roots = list(widened.get("writableRoots") or [])
        roots += [p for p in fs["write"] if p not in roots]
        widened["writableRoots"] = roots
        applied.setdefault("fileSystem", {})["write"] = fs["write"]
    return widened, applied


async def _permissions(ops: ClientOps, call: ToolCall) -> str:
    args = _args(call)
    thread, settings = ops.thread, ops.thread.settings
    asked = _requested(args, settings.cwd)
    if not asked:
        return "request_permissions needs `permissions` (network and/or file_system paths)"
    reason = args.get("reason")
    params: PermissionsRequestApprovalParams = {
        "threadId": thread.id,
        "turnId": ops.turn.id,
        "itemId": call.call_id,
        "startedAtMs": now_ms(),
        "cwd": settings.cwd,
        "reason": reason if isinstance(reason, str) else None,
        "permissions": cast("RequestPermissionProfile", asked),
    }
    try:
        answer = await ask_client(
            ops, "item/permissions/requestApproval", params, "waitingOnApproval"
        )
    except ClientUnavailable:
        return "request_permissions was cancelled before receiving a response"
    granted, scope = _granted(answer, asked, settings.cwd)
    policy, applied = _widen(settings.sandbox_policy, granted)
    if policy is not settings.sandbox_policy:
        saved = _turn_grants.get(ops.turn.id)
        if scope == "turn" and saved is None:
            _turn_grants[ops.turn.id] = (thread, settings.sandbox_policy)
        elif scope == "session" and saved is not None:
            # What the turn's end restores keeps this session grant.
            _turn_grants[ops.turn.id] = (thread, _widen(saved[1], granted)[0])
        thread.settings = settings.with_overrides(sandbox_policy=policy)
    return orjson.dumps({"permissions": applied, "scope": scope}).decode()


def end_of_turn(turn: ActiveTurn) -> None:
    """Undo the turn-scoped grants of a turn that is ending (before ``turn/completed``, so no
    later turn can start with them)."""
    saved = _turn_grants.pop(turn.id, None)
    if saved is not None:
        owner, policy = saved
        owner.settings = owner.settings.with_overrides(sandbox_policy=policy)
