"""The specification's interfaces: the bodies of its flat routes (``POST /upgrade``,
``/downgrade``, ``/export``, ``/delete``, ``/reactivate``) and the arguments of its
function-style calls (``upgrade_tenant(tenant_id=..., new_plan=...)``), with the
specification's names.

Each body names the tenant in ``tenant_id`` and may carry ``tenant_data``, the caller's own
record of the tenant as the specification passes it around. The control plane's row is the
authority on the tenant's state and plan, so only ``tenant_data.tenant_id`` is read: it
stands in for a missing ``tenant_id`` and must agree with a given one (422 otherwise); the
rest of ``tenant_data`` is accepted and ignored. Pure models, importable from workflow code.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from lifecycle.domain.base import DomainModel
from lifecycle.domain.deletion import RETENTION_MAX_DAYS, RETENTION_MIN_DAYS
from lifecycle.domain.exports import ExportType
from lifecycle.domain.plan_changes import Effective
from lifecycle.domain.tenants import TENANT_ID_PATTERN, validate_tenant_id
from lifecycle.domain.text import Printable


class TenantData(DomainModel):
    """Base of the specification's bodies: ``tenant_id`` (a slug) and the optional
    ``tenant_data`` record (only its ``tenant_id`` is read)."""

    tenant_id: str = Field(
        description="tenant slug: 3-63 of a-z, 0-9, single hyphens",
        json_schema_extra={"pattern": TENANT_ID_PATTERN, "minLength": 3, "maxLength": 63},
    )
    tenant_data: dict[str, Any] | None = Field(
        None,
        description="the caller's record of the tenant (the specification's tenant_data); "
        "only its tenant_id is read, the control plane's row is the authority",
    )

    _check_id = field_validator("tenant_id")(classmethod(lambda cls, v: validate_tenant_id(v)))

    @model_validator(mode="before")
    @classmethod
    def _tenant_id_from_tenant_data(cls, value: Any) -> Any:
        """Take ``tenant_id`` from ``tenant_data`` when the body has none; refuse two that
        differ (ValueError naming both fields)."""
        if not isinstance(value, dict) or not isinstance(value.get("tenant_data"), dict):
            return value
        inner = value["tenant_data"].get("tenant_id")
        if inner is None:
            return value
        outer = value.get("tenant_id")
        if outer is None:
            return {**value, "tenant_id": inner}
        if outer != inner:
            raise ValueError(
                f"tenant_id {outer!r} and tenant_data.tenant_id {inner!r} differ; "
                "send one tenant id"
            )
        return value


class UpgradeTenantData(TenantData):
    """Body of ``POST /upgrade``: upgrade ``tenant_id`` to ``new_plan`` now."""

    new_plan: Printable = Field(max_length=64, description="target plan, above the current one")


class DowngradeTenantData(TenantData):
    """Body of ``POST /downgrade``: downgrade to ``new_plan`` at the billing period's end or
    ``immediately``; without ``effective``, as the plans file's rule for the pair says."""

    new_plan: Printable = Field(max_length=64, description="target plan, below the current one")
    effective: Effective | None = None


class ExportTenantData(TenantData):
    """Body of ``POST /export``: ``full`` = rows and files, ``tables`` = rows."""

    export_type: ExportType = "full"


class DeleteTenantData(TenantData):
    """Body of ``POST /delete``: a soft delete kept ``retention_days`` (30..90, default
    SOFT_DELETE_RETENTION_DAYS); ``requested_by`` defaults to the caller's token name."""

    requested_by: Printable | None = Field(None, min_length=1, max_length=320)
    reason: Printable | None = Field(None, max_length=2000)
    retention_days: int | None = Field(None, ge=RETENTION_MIN_DAYS, le=RETENTION_MAX_DAYS)


class ReactivateTenantData(TenantData):
    """Body of ``POST /reactivate``: a SUSPENDED tenant, or a DELETED one within retention,
    back to ACTIVE on ``plan`` (default its plan at suspension or deletion)."""

    plan: Printable | None = Field(None, max_length=64)
    requested_by: Printable | None = Field(None, max_length=320)
