"""Provisioning of the SaaS application: the entitlements it enforces for a tenant.

The application reads a tenant's limits from the ``entitlements`` table, the source of truth.
:meth:`ProvisioningActivities.provision_entitlements` writes them with their audit row and a
``tenant.entitlements_changed`` event in the outbox, in one transaction. The provisioning
webhook (PROVISIONING_WEBHOOK_URL) is no longer called here: it is one subscriber of the
lifecycle events (:mod:`activities.events`), delivered, signed and retried by
``EventDeliveryWorkflow`` like every other endpoint, so a receiver outage no longer fails or
compensates a plan change.
"""

from __future__ import annotations

from pydantic import BaseModel
from temporalio import activity

from activities import domain_errors
from lifecycle.domain.plan_changes import ProvisionResult, StepEventInput
from lifecycle.faults import fault_point
from lifecycle.persistence.tenants import TenantRepository


class ProvisionInput(BaseModel):
    """Make ``limits`` (resource -> limit, -1 unlimited) the tenant's entitlements on
    ``plan``; ``event`` is the audit row written with them (once per ``event.key``)."""

    tenant_id: str
    plan: str
    limits: dict[str, int]
    event: StepEventInput


class ProvisioningActivities:
    """Writes entitlements where the application reads them."""

    def __init__(self, repository: TenantRepository) -> None:
        self.repository = repository

    @activity.defn
    @domain_errors
    async def provision_entitlements(self, data: ProvisionInput) -> ProvisionResult:
        """Replace the tenant's entitlements with ``data.limits`` (idempotent per
        ``data.event.key``; ``read_only`` kept while the tenant is in dunning past a
        read-only step) with the audit row and its ``tenant.entitlements_changed`` event;
        returns the entitlements written (``webhook_status`` is always None: the webhook is
        an event subscriber now)."""
        tenant = await self.repository.replace_entitlements(data.tenant_id, data.limits, data.event)
        fault_point("provisioning.after_provision")
        return ProvisionResult(entitlements=tenant.entitlements)
