"""Typed inputs of suspension: an ACTIVE tenant's access revoked, its subscription kept.

Pure pydantic models, importable from workflow code.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

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
