"""Params models of the methods that steer a thread's agent outside ``turn/start``:
``thread/inject_items``, ``thread/settings/update`` (experimental), ``review/start`` and the
goal methods (``thread/goal/set|get|clear``).

Models only. Raw Responses items and review targets stay dicts here: the engine checks them
(``thread_updates``, ``review``) and words its own errors.
"""

from __future__ import annotations

from typing import Any, Literal

from appserver.protocol.base import WireModel
from appserver.protocol.collaboration_params import CollaborationModeParam
from appserver.protocol.thread_params import ApprovalPolicy, Effort, Summary

GoalStatus = Literal["active", "paused", "blocked", "usageLimited", "budgetLimited", "complete"]


class ThreadInjectItemsParams(WireModel):
    thread_id: str
    items: list[Any]


class ThreadSettingsUpdateParams(WireModel):
    """Every field optional: absent (or null) keeps the thread's current value."""

    thread_id: str
    cwd: str | None = None
    approval_policy: ApprovalPolicy | None = None
    approvals_reviewer: str | None = None
    sandbox_policy: dict[str, Any] | None = None
    permissions: str | dict[str, Any] | None = None
    model: str | None = None
    service_tier: str | None = None
    effort: Effort | None = None
    summary: Summary | None = None
    collaboration_mode: CollaborationModeParam | None = None
    personality: str | None = None


class ReviewStartParams(WireModel):
    thread_id: str
    target: dict[str, Any]
    delivery: str | None = None


class ThreadGoalSetParams(WireModel):
    thread_id: str
    objective: str | None = None
    status: GoalStatus | None = None
    token_budget: int | None = None
    origin: Literal["user", "automatic"] | None = None


class ThreadGoalIdParams(WireModel):
    thread_id: str
    origin: Literal["user", "automatic"] | None = None
