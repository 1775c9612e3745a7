"""Reconciliation activities (issue 12): read the control plane's billing facts page by
page, read Stripe's, compare (:func:`lifecycle.domain.reconciliation.find_drift`), audit each
drift and store a repair's subscription. Repairs themselves are billing activities
(:class:`activities.billing.BillingActivities`) called by the workflow."""

from __future__ import annotations

import stripe
from temporalio import activity

from activities.billing import billing_error
from lifecycle.config import Settings
from lifecycle.domain.reconciliation import (
    FIXABLE,
    AttachSubscriptionInput,
    BillingPage,
    BillingPageInput,
    ControlPlaneBilling,
    Drift,
    DriftEventInput,
    StripeBilling,
    find_drift,
)
from lifecycle.domain.tenants import TenantView
from lifecycle.persistence.tenants import TenantRepository


class ReconciliationActivities:
    """Reads and audit rows of the reconciliation; ``client`` is None in limited mode."""

    def __init__(
        self,
        settings: Settings,
        repository: TenantRepository,
        client: stripe.StripeClient | None,
    ) -> None:
        self.settings, self.repository, self.client = settings, repository, client

    def _billing(self, tenant: TenantView) -> ControlPlaneBilling:
        plan = self.settings.plans.get(tenant.plan)
        pending = tenant.pending_plan_change or {}
        target = pending.get("to_plan")
        return ControlPlaneBilling(
            tenant_id=tenant.tenant_id,
            name=tenant.name,
            email=tenant.email,
            plan=plan.name,
            price_id=plan.price_id,
            paid=plan.monthly_price_cents > 0,
            state=tenant.state.value,
            customer_id=tenant.billing_customer_id,
            subscription_id=tenant.billing_subscription_id,
            pending_schedule_id=pending.get("schedule_id"),
            pending_price_id=self.settings.plans.get(target).price_id if target else None,
        )

    @activity.defn
    async def billing_page(self, page: BillingPageInput) -> BillingPage:
        """One page of tenants (by id) that have billing: a subscription id, or a paid plan
        while ACTIVE; purged tenants are left out. In limited mode: ``limited``, empty."""
        if self.client is None:
            return BillingPage(tenants=[], next_offset=None, limited=True)
        tenants, total = await self.repository.list(limit=page.limit, offset=page.offset)
        with_billing = [
            self._billing(t)
            for t in tenants
            if t.purged_at is None
            and (
                t.billing_subscription_id
                or (
                    t.state.value == "ACTIVE"
                    and self.settings.plans.get(t.plan).monthly_price_cents
                )
            )
        ]
        end = page.offset + len(tenants)
        return BillingPage(tenants=with_billing, next_offset=end if end < total else None)

    @activity.defn
    async def compare_billing(self, tenants: list[ControlPlaneBilling]) -> list[Drift]:
        """Read each tenant's subscription from Stripe and return every drift (both sides).
        Stripe errors other than a missing subscription: :func:`billing_error`."""
        assert self.client is not None, "reconciliation needs STRIPE_API_KEY"
        drifts = []
        for cp in tenants:
            activity.heartbeat(cp.tenant_id)
            side = await self._stripe(cp.subscription_id) if cp.subscription_id else None
            drifts += [
                Drift(
                    tenant_id=cp.tenant_id,
                    kind=kind,
                    fixable=kind in FIXABLE,
                    control_plane=cp,
                    stripe=side,
                )
                for kind in find_drift(cp, side)
            ]
        return drifts

    async def _stripe(self, subscription_id: str) -> StripeBilling:
        assert self.client is not None
        try:
            sub = await self.client.v1.subscriptions.retrieve_async(subscription_id)
        except stripe.InvalidRequestError as exc:
            if exc.code == "resource_missing":
                return StripeBilling(status="missing")
            raise billing_error(exc) from exc
        except stripe.StripeError as exc:
            raise billing_error(exc) from exc
        data = sub.to_dict()
        items = (data.get("items") or {}).get("data") or []
        schedule = data.get("schedule")
        return StripeBilling(
            status=str(data.get("status")),
            price_id=items[0]["price"]["id"] if items else None,
            schedule_id=schedule if isinstance(schedule, str) or schedule is None else schedule.id,
        )

    @activity.defn
    async def record_drift(self, data: DriftEventInput) -> None:
        """Audit row ``billing-drift`` on the tenant with both sides and the repair (once per
        workflow, kind and repair)."""
        drift = data.drift
        await self.repository.record_event(
            drift.tenant_id,
            "billing-drift",
            workflow_id=data.workflow_id,
            actor=data.actor,
            detail=drift.model_dump(mode="json", exclude={"tenant_id"}),
        )

    @activity.defn
    async def attach_subscription(self, data: AttachSubscriptionInput) -> TenantView:
        """Store the subscription a repair created on the tenant, audited."""
        return await self.repository.attach_subscription(
            data.tenant_id,
            data.customer_id,
            data.subscription_id,
            workflow_id=data.workflow_id,
            actor=data.actor,
        )
