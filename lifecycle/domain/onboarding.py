"""Typed inputs of onboarding: the API's request and the onboarding workflow's input.

Pure pydantic models, importable from workflow code.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, EmailStr, Field, field_validator

from lifecycle.domain.base import DomainModel
from lifecycle.domain.billing import BillingResult
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TENANT_ID_PATTERN, validate_tenant_id
from lifecycle.domain.text import Printable
from lifecycle.domain.trials import TrialTerms


class OnboardRequest(DomainModel):
    """Body of ``POST /tenants``: a new tenant on a plan."""

    # The pattern is documented in the schema; the validator checks it with a precise message.
    tenant_id: str = Field(
        description="tenant slug: 3-63 of a-z, 0-9, single hyphens",
        json_schema_extra={"pattern": TENANT_ID_PATTERN, "minLength": 3, "maxLength": 63},
    )
    name: Printable = Field(min_length=1, max_length=200)
    email: EmailStr = Field(max_length=320)
    plan: Printable = Field("free", max_length=64)
    data_key: str | None = Field(
        None,
        max_length=200,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Key of the tenant's data in the data map (default: the tenant id); "
        "used in SQL comparisons and storage prefixes, so no slashes",
    )

    trial_days: int | None = Field(
        None, ge=1, le=730, description="Days of free trial (Stripe trial_end); none by default"
    )

    _check_id = field_validator("tenant_id")(classmethod(lambda cls, v: validate_tenant_id(v)))


class OnboardInput(DomainModel):
    """Input of the onboarding workflow; ``limits`` and ``price_id`` resolved from the plan."""

    request: OnboardRequest
    limits: dict[str, int]
    price_id: str
    actor: str = "api"
    trial: TrialTerms | None = None


class CreateTenantInput(DomainModel):
    """The tenant row written at the end of onboarding, with its entitlements."""

    request: OnboardRequest
    limits: dict[str, int]
    billing: BillingResult
    workflow_id: str
    actor: str
    trial_ends_at: datetime | None = None


class OnboardingResult(BaseModel):
    """Result of the onboarding workflow: the ACTIVE tenant and its billing."""

    tenant_id: str
    state: TenantState
    plan: str
    billing: BillingResult
