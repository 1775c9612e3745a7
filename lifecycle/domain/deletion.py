"""Typed inputs of soft deletion, legal hold, reactivation and suspension (GDPR Art. 17:
the right to erasure, with a retention window in which the customer may come back).

Pure pydantic models, importable from workflow code. Times are UTC-aware ``datetime``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

#: Bounds of the soft-delete retention window in days (product specification).
RETENTION_MIN_DAYS, RETENTION_MAX_DAYS = 30, 90

#: Why a deleted tenant cannot be reactivated when the feature flag is off.
REACTIVATION_DISABLED = (
    "reactivation of deleted tenants is disabled (ENABLE_REACTIVATION_WORKFLOW=false)"
)
#: Store names of the certificate that are not in the data map.
EXPORTS_STORE = "exports"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DeleteRequest(_Model):
    """Body of ``POST /tenants/{id}/delete``; ``retention_days`` defaults to
    SOFT_DELETE_RETENTION_DAYS and must lie within 30..90."""

    requested_by: str = Field(min_length=1, max_length=320)
    reason: str | None = Field(None, max_length=2000)
    retention_days: int | None = Field(None, ge=RETENTION_MIN_DAYS, le=RETENTION_MAX_DAYS)


class DeletionInput(_Model):
    """Input of the deletion workflow (``tenant-<id>-deletion``)."""

    tenant_id: str
    requested_by: str
    reason: str | None = None
    retention_days: int = Field(ge=RETENTION_MIN_DAYS, le=RETENTION_MAX_DAYS)
    reactivation_enabled: bool = True
    actor: str = "api"


class ReactivateRequest(BaseModel):
    """Body of ``POST /tenants/{id}/reactivate`` and argument of the deletion workflow's
    ``reactivate`` signal, e.g. from ``temporal workflow signal --input '{"plan": "starter"}'``.

    ``plan`` defaults to the plan at deletion (or the current plan of a suspended tenant).
    Unknown fields are ignored so that hand-written CLI input is not dropped.
    """

    plan: str | None = Field(None, max_length=64)
    requested_by: str | None = Field(None, max_length=320)


class LegalHoldRequest(_Model):
    """Body of ``POST /tenants/{id}/legal-hold`` (and, with ``hold`` false, of the release)."""

    reason: str | None = Field(None, max_length=2000)
    requested_by: str | None = Field(None, max_length=320)


class LegalHoldSignal(BaseModel):
    """Argument of the deletion workflow's ``set_legal_hold`` signal."""

    hold: bool
    reason: str | None = None
    requested_by: str | None = None


class LegalHoldChange(_Model):
    """Write of ``tenants.legal_hold`` plus its audit row."""

    tenant_id: str
    hold: bool
    actor: str
    workflow_id: str | None = None
    reason: str | None = None


class ResolvedPlan(_Model):
    """A plan's name, entitlement limits and billing price id, read from the plans file."""

    name: str
    limits: dict[str, int]
    price_id: str


class ReactivationInput(_Model):
    """Input of the reactivation workflow of a SUSPENDED tenant (``tenant-<id>-reactivate``)."""

    tenant_id: str
    plan: str | None = None
    actor: str = "api"


class TenantEvent(_Model):
    """An audit row that is not a state change (e.g. an ignored signal, a purge failure)."""

    tenant_id: str
    operation: str
    workflow_id: str | None
    actor: str = "system"
    detail: dict[str, Any] = Field(default_factory=dict)


class PurgeTarget(_Model):
    """The tenant whose data a purge step works on; ``data_key`` selects it in the data map."""

    tenant_id: str
    data_key: str


class PurgeStoreInput(_Model):
    """One store of the purge: a table (``database.table``) or ``storage[i]``."""

    tenant_id: str
    data_key: str
    store: str


class BeginPurgeInput(_Model):
    """Compare-and-set that starts the purge: the tenant must be DELETED, not purged and not
    under legal hold."""

    tenant_id: str
    workflow_id: str


class CompletePurgeInput(_Model):
    """What the deletion certificate attests (counts per store: ``{"rows": n}`` or
    ``{"files": n, "bytes": b}``); times are the workflow's (start, end of verification)."""

    tenant_id: str
    workflow_id: str
    requested_by: str
    requested_at: datetime
    purged_at: datetime
    retention_days: int
    before: dict[str, dict[str, int]]
    after: dict[str, dict[str, int]]
    billing: dict[str, Any]


class CertificateView(BaseModel):
    """A deletion certificate: the document, its SHA-256 and HMAC-SHA256 signature (hex)."""

    tenant_id: str
    document: dict[str, Any]
    sha256: str
    signature: str
    algorithm: str = "HMAC-SHA256"
    canonicalization: str = "JSON, keys sorted, separators (',', ':'), UTF-8"
    created_at: datetime | None = None


class SuspendRequest(_Model):
    """Body of ``POST /tenants/{id}/suspend``."""

    reason: str = Field(min_length=1, max_length=2000)


class SuspensionInput(_Model):
    """Input of the suspension workflow (``tenant-<id>-suspend``)."""

    tenant_id: str
    reason: str
    actor: str = "api"


class PaymentFailureInput(_Model):
    """Input of the payment-failure workflow (``tenant-<id>-payment-failure``): after
    ``grace_days`` without ``invoice.paid`` the tenant is suspended, or with ``auto_downgrade``
    moved to the lowest plan."""

    tenant_id: str
    invoice_id: str | None
    event_id: str
    grace_days: int = Field(ge=0)
    auto_downgrade: bool = False


class InvoicePaid(BaseModel):
    """Argument of the payment-failure workflow's ``invoice_paid`` signal."""

    invoice_id: str | None = None
    event_id: str | None = None


def purged_detail(tenant_id: str, purged_at: object) -> str:
    """The one wording of "this tenant's data is gone" used by every rejection."""
    return f"tenant '{tenant_id}' was purged at {purged_at}; its data no longer exists"
