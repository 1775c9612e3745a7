"""The result of a billing step, shared by every operation that calls Stripe."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from lifecycle.domain.base import DomainModel


class BillingResult(DomainModel):
    """Outcome of one billing step; ``skipped`` in limited mode (no STRIPE_API_KEY)."""

    skipped: bool = False
    customer_id: str | None = None
    subscription_id: str | None = None
    period_end: datetime | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
