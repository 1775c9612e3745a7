"""Typed inputs of soft deletion, legal hold, reactivation and suspension (GDPR Art. 17:
the right to erasure, with a retention window in which the customer may come back).

Pure pydantic models, importable from workflow code. Times are UTC-aware ``datetime``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from lifecycle.domain.base import DomainModel
from lifecycle.domain.errors import LifecycleError
from lifecycle.domain.operations import OperationStarted
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import OperationProgress
from lifecycle.domain.text import Printable

#: Bounds of the soft-delete retention window in days (product specification).
RETENTION_MIN_DAYS, RETENTION_MAX_DAYS = 30, 90

#: Store names of the certificate that are not in the data map.
EXPORTS_STORE = "exports"


class DeleteRequest(DomainModel):
    """Body of ``POST /tenants/{id}/delete``; ``retention_days`` defaults to
    SOFT_DELETE_RETENTION_DAYS and must lie within 30..90."""

    requested_by: Printable = Field(min_length=1, max_length=320)
    reason: Printable | None = Field(None, max_length=2000)
    retention_days: int | None = Field(None, ge=RETENTION_MIN_DAYS, le=RETENTION_MAX_DAYS)


class DeletionInput(DomainModel):
    """Input of the deletion workflow (``tenant-<id>-deletion``)."""

    tenant_id: str
    requested_by: str
    reason: str | None = None
    retention_days: int = Field(ge=RETENTION_MIN_DAYS, le=RETENTION_MAX_DAYS)
    reactivation_enabled: bool = True
    actor: str = "api"


class LegalHoldRequest(DomainModel):
    """Body of ``POST /tenants/{id}/legal-hold`` (and, with ``hold`` false, of the release)."""

    reason: Printable | None = Field(None, max_length=2000)
    requested_by: Printable | None = Field(None, max_length=320)


class LegalHoldSignal(BaseModel):
    """Argument of the deletion workflow's ``set_legal_hold`` signal."""

    hold: bool
    reason: str | None = None
    requested_by: str | None = None


class LegalHoldChange(DomainModel):
    """Write of ``tenants.legal_hold`` plus its audit row."""

    tenant_id: str
    hold: bool
    actor: str
    workflow_id: str | None = None
    reason: str | None = None


class PurgeNowRequest(DomainModel):
    """Body of ``POST /tenants/{id}/purge``: a written request for immediate erasure (GDPR
    Art. 17(1)). ``confirm`` must repeat the tenant id exactly (422 otherwise)."""

    requested_by: str = Field(min_length=1, max_length=320)
    reason: str = Field(min_length=1, max_length=2000)
    confirm: str = Field(max_length=320)


class RetentionWaiverRequest(BaseModel):
    """Argument of the deletion workflow's ``purge_now`` update."""

    requested_by: str
    reason: str


class RetentionWaiver(BaseModel):
    """A waived retention, as the audit row and the certificate record it: who, when
    (the workflow's time, UTC ISO 8601) and why."""

    by: str
    at: str
    reason: str


class PurgeNowAccepted(BaseModel):
    """The 202 answer of purge now: the deletion workflow accepted the waiver and purges;
    ``purge_scheduled_at`` is the end of the retention that was waived (ISO 8601)."""

    tenant_id: str
    workflow_id: str
    status: str = "accepted"
    retention_waived: RetentionWaiver
    purge_scheduled_at: str


class PurgeTarget(DomainModel):
    """The tenant whose data a purge step works on; ``data_key`` selects it in the data map."""

    tenant_id: str
    data_key: str


class PurgeStoreInput(DomainModel):
    """One store of the purge: a table (``database.table``) or ``storage[i]``."""

    tenant_id: str
    data_key: str
    store: str


class BeginPurgeInput(DomainModel):
    """Compare-and-set that starts the purge: the tenant must be DELETED, not purged and not
    under legal hold."""

    tenant_id: str
    workflow_id: str


class CompletePurgeInput(DomainModel):
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
    """A deletion certificate: the document, its SHA-256 and its signature (hex): Ed25519
    under the key ``document["kid"]``, or HMAC-SHA256 for certificates issued before."""

    tenant_id: str
    document: dict[str, Any]
    sha256: str
    signature: str
    algorithm: str = "HMAC-SHA256"
    canonicalization: str = "JSON, keys sorted, separators (',', ':'), UTF-8"
    created_at: datetime | None = None


class CertificateKey(BaseModel):
    """A public key that verifies deletion certificates (``GET /certificates/keys``)."""

    kid: str
    algorithm: Literal["Ed25519"] = "Ed25519"
    public_key: str = Field(description="PEM (SubjectPublicKeyInfo)")
    status: Literal["current", "retired"]


class CertificateKeys(BaseModel):
    """Every key a certificate of this control plane may name: the current one first."""

    keys: list[CertificateKey]


def purged_detail(tenant_id: str, purged_at: object) -> str:
    """The one wording of "this tenant's data is gone" used by every rejection."""
    return f"tenant '{tenant_id}' was purged at {purged_at}; its data no longer exists"


class DeletionStarted(OperationStarted):
    """The 202 answer of a soft delete: ``deletion_id`` is the workflow run,
    ``hard_delete_scheduled_at`` the purge time (UTC ISO 8601: the workflow's start plus the
    retention)."""

    deletion_id: str | None
    can_reactivate: bool
    retention_days: int
    hard_delete_scheduled_at: str


class LegalHoldAccepted(BaseModel):
    """The 202 answer of placing or releasing a legal hold; ``workflow_id`` is the deletion
    workflow that was signalled, or None when the row was written directly."""

    tenant_id: str
    legal_hold: bool
    status: str = "accepted"
    workflow_id: str | None = None


class CertificateNotFound(LifecycleError):
    """The tenant has no deletion certificate (it was not purged)."""

    status = 404
    title = "Not found"


# -- workflow results -------------------------------------------------------------------------


class DeletionPurged(BaseModel):
    """Result of a deletion that ended with the purge; ``purged_at`` as in the certificate."""

    outcome: Literal["purged"] = "purged"
    purged_at: str


class DeletionReactivated(BaseModel):
    """Result of a deletion that ended with the tenant reactivated within retention."""

    outcome: Literal["reactivated"] = "reactivated"
    state: TenantState
    plan: str


#: Result of the deletion workflow, told apart by ``outcome``.
DeletionResult = Annotated[DeletionPurged | DeletionReactivated, Field(discriminator="outcome")]


class DeletionProgress(OperationProgress):
    """The deletion's ``progress``: phase (starting, retained, reactivating, reactivated,
    purging, purged), the scheduled purge (ISO 8601), the legal hold and the counts taken
    before the purge (per store)."""

    phase: str
    purge_at: str
    legal_hold: bool
    before: dict[str, dict[str, int]] | None = None
    retention_waived: RetentionWaiver | None = None
