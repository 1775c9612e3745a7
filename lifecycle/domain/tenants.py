"""Typed inputs and results shared by the API, the client, workflows and activities.

Pure pydantic models: importable from workflow code (no I/O here). Times are UTC-aware
``datetime``; sizes are bytes unless the field name says otherwise.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from pydantic import BaseModel, Field

from lifecycle.domain.base import DomainModel
from lifecycle.domain.dunning import DunningStatus
from lifecycle.domain.states import TenantState

TENANT_ID_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$"
_TENANT_ID_RE = re.compile(TENANT_ID_PATTERN)


def validate_tenant_id(value: str) -> str:
    """Return ``value`` if it is a tenant slug (3-63 chars, a-z 0-9 and inner hyphens).

    Raises ``ValueError`` naming the rule otherwise.
    """
    if not isinstance(value, str) or not _TENANT_ID_RE.fullmatch(value) or "--" in value:
        raise ValueError(
            f"tenant id {value!r} is not a valid slug: 3-63 characters of a-z, 0-9 and single "
            "hyphens, starting and ending with a letter or digit"
        )
    return value


def canonical_data_key(data_key: str) -> str:
    """The form in which two data keys are compared for uniqueness (one tenant per key).

    The purge and the export compare a key in the type of the application's tenant column
    (``lifecycle.storage.stores``), so keys that an integer, numeric or UUID column would
    find equal are one key: a number becomes its plain normalised decimal (``"01"`` and
    ``"1.0"`` -> ``"1"``; ``"1_0"`` and ``"1e1"`` -> ``"10"``), a UUID its lower-case
    hyphenated form; any other key is compared exactly (text columns of PostgreSQL and
    SQLite are case-sensitive). Deliberately conservative: keys equal under *any* column
    type are one key, whatever the data map says today.
    """
    try:
        number = Decimal(data_key)
    except (InvalidOperation, ValueError):
        pass
    else:
        if number.is_finite() and (number == 0 or abs(number.adjusted()) <= 64):
            return "0" if number == 0 else format(number.normalize(), "f")
    try:
        return str(uuid.UUID(data_key))
    except ValueError:
        return data_key


class OperationUpdate(DomainModel):
    """Progress or outcome of an operation, mirrored into the ``operations`` table."""

    workflow_id: str
    tenant_id: str
    kind: str
    status: Literal["running", "completed", "failed", "cancelled"]
    step: str | None = None
    result: dict[str, Any] | None = None
    error: str | None = None


class TransitionInput(DomainModel):
    """A compare-and-set state change of one tenant plus its audit row.

    ``from_states``: the states the change is allowed from; ``changes``: other tenant columns
    to set in the same transaction; ``entitlements``: limits to write in the same transaction;
    ``record``: the operation's step recorded in the same transaction (the ``operations`` row
    of the calling workflow run), instead of a ``record_operation`` step of its own.
    """

    tenant_id: str
    from_states: list[TenantState]
    to_state: TenantState
    operation: str
    workflow_id: str
    actor: str = "system"
    reason: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    changes: dict[str, Any] = Field(default_factory=dict)
    entitlements: dict[str, int] | None = None
    reactivation: bool = False
    record: OperationUpdate | None = None


class Suspension(BaseModel):
    """Why a SUSPENDED tenant is suspended: ``kind`` ``admin`` (``POST .../suspend``),
    ``dunning`` (a dunning step), ``paused`` (``POST .../pause``, resumed at ``resume_at``
    UTC, or early) or None (suspended before kinds were kept); ``reason`` as given."""

    kind: str | None = None
    reason: str | None = None
    resume_at: datetime | None = None


class TenantView(BaseModel):
    """A tenant as the API and the client return it.

    ``suspension`` only while SUSPENDED; ``dunning`` while an invoice is overdue
    (:class:`~lifecycle.domain.dunning.DunningStatus`); ``trial_ends_at`` (UTC) of a tenant
    onboarded with a trial.
    """

    tenant_id: str
    name: str | None
    email: str | None
    data_key: str
    plan: str
    state: TenantState
    version: int
    billing_customer_id: str | None
    billing_subscription_id: str | None
    billing_period_end: datetime | None
    usage: dict[str, int]
    entitlements: dict[str, int]
    pending_plan_change: dict[str, Any] | None
    legal_hold: bool
    created_at: datetime
    updated_at: datetime
    deletion_requested_at: datetime | None
    purge_scheduled_at: datetime | None
    purged_at: datetime | None
    suspension: Suspension | None = None
    dunning: DunningStatus | None = None
    trial_ends_at: datetime | None = None


class EventView(BaseModel):
    """One audit-log row."""

    id: int
    at: datetime
    tenant_id: str
    operation: str
    from_state: str | None
    to_state: str | None
    workflow_id: str | None
    actor: str
    detail: dict[str, Any]


class OperationView(BaseModel):
    """Status of one operation run: Temporal's view plus the control plane's step and result.

    ``run_id`` is Temporal's run id (``''`` for a run recorded before run ids were kept);
    ``runs`` (only on ``GET /operations/{workflow_id}``) lists every recorded run of the
    workflow id, latest first, each without ``runs``."""

    workflow_id: str
    run_id: str | None = None
    tenant_id: str | None = None
    kind: str | None = None
    status: str
    step: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    runs: list[OperationView] | None = None


class OperationPage(BaseModel):
    """One page of a tenant's operation runs, latest first (``GET /tenants/{id}/operations``)."""

    items: list[OperationView]
    total: int
    limit: int
    offset: int


class TenantEvent(DomainModel):
    """An audit row that is not a state change (e.g. an ignored signal, a purge failure)."""

    tenant_id: str
    operation: str
    workflow_id: str | None
    actor: str = "system"
    detail: dict[str, Any] = Field(default_factory=dict)


# -- what every running operation answers ----------------------------------------------------


class OperationProgress(BaseModel):
    """Answer of a lifecycle workflow's ``progress`` query: the operation (its kind) and its
    current step. Workflows with more to show extend it."""

    operation: str
    step: str
