"""Typed inputs of suspension: an ACTIVE tenant's access revoked, its subscription kept; and
of a pause: suspended with its billing's collection paused, resumed at a date or early.

Pure pydantic models, importable from workflow code.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from lifecycle.domain.base import DomainModel
from lifecycle.domain.states import TenantState
from lifecycle.domain.text import Printable


class SuspendRequest(DomainModel):
    """Body of ``POST /tenants/{id}/suspend``."""

    reason: Printable = Field(min_length=1, max_length=2000)


class SuspensionInput(DomainModel):
    """Input of the suspension workflow (``tenant-<id>-suspend``)."""

    tenant_id: str
    reason: str
    actor: str = "api"


class SuspensionResult(BaseModel):
    """Result of the suspension workflow: the tenant as it ended."""

    tenant_id: str
    state: TenantState
    plan: str
    outcome: str


class PauseRequest(DomainModel):
    """Body of ``POST /tenants/{id}/pause``: ``resume_at`` (timezone-aware, in the future;
    None: paused until ``POST .../resume``)."""

    reason: Printable = Field(min_length=1, max_length=2000)
    resume_at: AwareDatetime | None = None


class PauseInput(DomainModel):
    """Input of the pause workflow (``tenant-<id>-pause``): SUSPENDED with
    ``suspension.kind = "paused"``, collection paused with ``behavior``
    (PAUSE_COLLECTION_BEHAVIOR), resumed at ``resume_at`` or by the ``resume`` signal."""

    tenant_id: str
    reason: str
    resume_at: datetime | None = None
    behavior: str = "void"
    actor: str = "api"


class ResumeSignal(BaseModel):
    """Argument of the pause workflow's ``resume`` signal (``POST /tenants/{id}/resume``)."""

    actor: str = "api"


class PauseResult(BaseModel):
    """Result of the pause workflow: the tenant as it ended and how (``resumed on schedule``,
    ``resumed early``, ``ended: tenant is <state>`` when something else moved it first)."""

    tenant_id: str
    state: TenantState
    plan: str
    outcome: str
