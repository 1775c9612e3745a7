"""Typed inputs of reactivation: a SUSPENDED tenant back to ACTIVE, or a DELETED one within its
retention window (the deletion workflow's ``reactivate`` signal).

Pure pydantic models, importable from workflow code.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from lifecycle.domain.base import DomainModel
from lifecycle.domain.states import TenantState
from lifecycle.domain.text import Printable

#: Why a deleted tenant cannot be reactivated when the feature flag is off.
REACTIVATION_DISABLED = (
    "reactivation of deleted tenants is disabled (ENABLE_REACTIVATION_WORKFLOW=false)"
)


class ReactivateRequest(BaseModel):
    """Body of ``POST /tenants/{id}/reactivate`` and argument of the deletion workflow's
    ``reactivate`` signal, e.g. from ``temporal workflow signal --input '{"plan": "starter"}'``.

    ``plan`` defaults to the plan at deletion (or the current plan of a suspended tenant).
    Unknown fields are ignored so that hand-written CLI input is not dropped.
    """

    plan: Printable | None = Field(None, max_length=64)
    requested_by: Printable | None = Field(None, max_length=320)


class ReactivationInput(DomainModel):
    """Input of the reactivation workflow of a SUSPENDED tenant (``tenant-<id>-reactivate``)."""

    tenant_id: str
    plan: str | None = None
    actor: str = "api"


class ReactivationResult(BaseModel):
    """Result of the reactivation workflow: the tenant ACTIVE again."""

    tenant_id: str
    state: TenantState
    plan: str


class ReactivationAccepted(BaseModel):
    """Result of the deletion workflow's ``request_reactivation`` update."""

    accepted: bool = True
    plan: str | None = None
