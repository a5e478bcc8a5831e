"""Params models of the thread and turn methods (spec §3.1, §3.2).

Models only. ``UserInput`` items stay plain dicts checked by ``check_user_input`` because
clients send several shapes and the engine stores them verbatim; everything else is typed.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from appserver.protocol.base import WireModel
from appserver.protocol.collaboration_params import CollaborationModeParam
from appserver.protocol.errors import RpcError, invalid_params, invalid_request

ApprovalPolicy = Literal["untrusted", "on-failure", "on-request", "never"]
SandboxMode = Literal["read-only", "workspace-write", "danger-full-access"]
Effort = Literal["none", "minimal", "low", "medium", "high", "xhigh"]
Summary = Literal["auto", "concise", "detailed", "none"]


class ThreadOverrides(WireModel):
    """What ``thread/start``, ``thread/resume`` and ``thread/fork`` may set. ``permissions``
    (experimental) selects a built-in permission profile, by id (``":workspace"``) or as
    the legacy ``{type: "profile", id, modifications}`` object; it is the newer spelling of
    ``sandbox``, and the two cannot be combined."""

    model: str | None = None
    model_provider: str | None = None
    cwd: str | None = None
    approval_policy: ApprovalPolicy | None = None
    approvals_reviewer: str | None = None
    sandbox: SandboxMode | None = None
    permissions: str | dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    # Experimental in Codex: an empty list starts the thread with no execution environment.
    environments: list[Any] | None = None
    base_instructions: str | None = None
    developer_instructions: str | None = None
    service_tier: str | None = None


class ThreadStartParams(ThreadOverrides):
    ephemeral: bool | None = None
    # Experimental: tools the client runs (``item/tool/call``), checked by ``client_tools``.
    dynamic_tools: list[Any] | None = None
    service_name: str | None = None
    personality: str | None = None


class ThreadResumeParams(ThreadOverrides):
    thread_id: str
    exclude_turns: bool = False


class ThreadForkParams(ThreadOverrides):
    thread_id: str
    ephemeral: bool | None = None


class ThreadIdParams(WireModel):
    thread_id: str


class ThreadReadParams(WireModel):
    thread_id: str
    include_turns: bool = False


class ThreadCompactStartParams(WireModel):
    thread_id: str


class ThreadNameSetParams(WireModel):
    thread_id: str
    name: str | None


class GitInfoPatch(WireModel):
    # Each field is tri-state on the wire: absent = keep, null = clear, value = set.
    sha: str | None = None
    branch: str | None = None
    origin_url: str | None = None


class ThreadMetadataUpdateParams(WireModel):
    thread_id: str
    git_info: dict[str, Any] | None = None


ThreadSortKey = Literal["created_at", "updated_at", "recency_at", "section_position"]


class ThreadListParams(WireModel):
    """``thread/list``. Every sort key of the schema is accepted (``recency_at`` orders by
    last activity: a thread's recency is its last update here; ``section_position`` by the
    order threads were placed in their section). ``sectionId`` absent lists every thread,
    null the unsectioned ones, a section id that section's. There are no sub-agent or attached
    threads, so a ``parentThreadId``, ``ancestorThreadId`` or ``attachedToThreadId`` filter
    matches none; ``originators`` must be empty (as in the reference's local server);
    ``currentAccountOnly`` changes nothing, since every thread here is local history."""

    cursor: str | None = None
    limit: int | None = Field(default=None, ge=0)
    sort_key: ThreadSortKey | None = None
    sort_direction: Literal["asc", "desc"] | None = None
    model_providers: list[str] | None = None
    source_kinds: list[str] | None = None
    archived: bool | None = None
    cwd: str | list[str] | None = None
    search_term: str | None = None
    use_state_db_only: bool = False
    excluded_thread_ids: list[str] | None = None
    originators: list[str] | None = None
    section_id: str | None = None
    current_account_only: bool = False
    parent_thread_id: str | None = None
    ancestor_thread_id: str | None = None
    attached_to_thread_id: str | None = None


class ThreadSearchParams(WireModel):
    """Experimental ``thread/search``: ``thread/list``'s paging and filters around a required
    search term. The schema also names a ``recency_at`` sort key; we sort it as ``updated_at``
    (the last activity is what recency means for a thread here)."""

    search_term: str
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=0)
    sort_key: Literal["created_at", "updated_at", "recency_at"] | None = None
    sort_direction: Literal["asc", "desc"] | None = None
    source_kinds: list[str] | None = None
    archived: bool | None = None


class ThreadTurnsListParams(WireModel):
    thread_id: str
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=0)
    sort_direction: Literal["asc", "desc"] | None = None
    items_view: Literal["notLoaded", "summary", "full"] | None = None


class ThreadLoadedListParams(WireModel):
    cursor: str | None = None
    limit: int | None = Field(default=None, ge=0)


class TurnStartParams(WireModel):
    thread_id: str
    input: list[dict[str, Any]]
    cwd: str | None = None
    approval_policy: ApprovalPolicy | None = None
    approvals_reviewer: str | None = None
    sandbox_policy: dict[str, Any] | None = None
    model: str | None = None
    service_tier: str | None = None
    effort: Effort | None = None
    summary: Summary | None = None
    personality: str | None = None
    output_schema: dict[str, Any] | None = None
    # Experimental: a permission profile (see ``ThreadOverrides``) and a collaboration mode
    # (``{mode: "plan" | "default", settings: {model, reasoning_effort,
    # developer_instructions}}``), both for this turn and the ones after it.
    permissions: str | dict[str, Any] | None = None
    collaboration_mode: CollaborationModeParam | None = None


class TurnSteerParams(WireModel):
    thread_id: str
    input: list[dict[str, Any]]
    expected_turn_id: str


class TurnInterruptParams(WireModel):
    thread_id: str
    turn_id: str | None = None


_INPUT_TYPES = {"text", "image", "localImage", "skill", "mention"}

# The reference's limit (``MAX_USER_INPUT_TEXT_CHARS``): the text of one turn/start or
# turn/steer, all its text items together, counted in characters.
MAX_USER_INPUT_TEXT_CHARS = 1 << 20


def input_too_large(actual: int) -> RpcError:
    """The reference's reply to an over-long input: -32602 with snake_case ``data``."""
    return invalid_params(
        f"Input exceeds the maximum length of {MAX_USER_INPUT_TEXT_CHARS} characters.",
        {
            "input_error_code": "input_too_large",
            "max_chars": MAX_USER_INPUT_TEXT_CHARS,
            "actual_chars": actual,
        },
    )


def check_user_input(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate and normalise ``UserInput`` items (text gets ``text_elements: []``).

    Text longer than ``MAX_USER_INPUT_TEXT_CHARS`` in total is refused (-32602) before
    anything is recorded.
    """
    total = sum(len(t) for i in items if isinstance(t := i.get("text"), str))
    if total > MAX_USER_INPUT_TEXT_CHARS:
        raise input_too_large(total)
    out: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        kind = item.get("type")
        if kind not in _INPUT_TYPES:
            raise invalid_request(f"Invalid request: unknown input type {kind!r} at `input.{i}`")
        if kind == "text":
            if not isinstance(item.get("text"), str):
                raise invalid_request(f"Invalid request: missing field `text` at `input.{i}`")
            elements = item.get("text_elements", item.get("textElements", []))
            out.append({"type": "text", "text": item["text"], "text_elements": elements or []})
        elif kind == "image":
            url = item.get("url") or item.get("imageUrl")
            if not isinstance(url, str):
                raise invalid_request(f"Invalid request: missing field `url` at `input.{i}`")
            if url.startswith(("http://", "https://")):
                raise invalid_request(
                    "remote image URLs are not supported; use an inline data URL instead"
                )
            out.append({"type": "image", "url": url})
        elif kind == "skill":
            for key in ("name", "path"):
                if not isinstance(item.get(key), str):
                    raise invalid_request(f"Invalid request: missing field `{key}` at `input.{i}`")
            out.append({"type": "skill", "name": item["name"], "path": item["path"]})
        else:
            out.append(dict(item))
    return out
