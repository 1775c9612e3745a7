"""Plan changes: upgrade now (saga), downgrade at period end or now, the pending downgrade's
cancellation, the usage check, and recorded usage."""

from __future__ import annotations

from temporalio.service import RPCError, RPCStatusCode

from lifecycle.client.base import Service
from lifecycle.domain.errors import InvalidInput, StateConflict
from lifecycle.domain.operations import OperationKind, OperationStarted, workflow_id
from lifecycle.domain.plan_changes import (
    CancelDowngrade,
    DowngradePreview,
    DowngradeStarted,
    Effective,
    PlanChangePreview,
    UsageExceedsLimits,
    UsageView,
    cancel_reason,
    check_usage_update,
    entitlement_diff,
    plan_change_input,
    require_active,
    require_allowed,
)
from lifecycle.domain.plans import ChangeRule, usage_violations
from lifecycle.domain.states import TenantState

#: When a change applies, by the plans file's rule (``not_allowed`` never reaches a workflow).
RULE_EFFECTIVE: dict[ChangeRule, Effective] = {
    "immediate": "immediately",
    "end_of_period": "period_end",
}


class PlanChangeService(Service):
    """Starts upgrades and downgrades, previews and records usage."""

    async def upgrade_tenant(
        self, tenant_id: str, to_plan: str, actor: str = "api"
    ) -> OperationStarted:
        """Start upgrading to ``to_plan`` now, billed with PRORATION_BEHAVIOR.

        Raises TenantNotFound, InvalidInput (target not above the current plan, naming both),
        PlanChangeNotAllowed (the plans file's rule for the pair) and StateConflict (tenant
        not ACTIVE, naming its state; upgrade already running) before anything starts. A
        downgrade waiting for the period end is cancelled by it.
        """
        from workflows.upgrade import UpgradeWorkflow

        tenant = await self.core.repository.get(tenant_id)
        catalog = self.core.settings.plans
        target = catalog.require_upgrade(tenant.plan, to_plan)
        require_allowed(catalog, tenant_id, tenant.plan, to_plan)
        require_active(tenant_id, tenant.state, "upgrade")
        data = plan_change_input(
            catalog,
            tenant_id,
            tenant.plan,
            target,
            proration_behavior=self.core.settings.proration_behavior,
            actor=actor,
        )
        return await self.core.start(
            UpgradeWorkflow.run, data, tenant_id=tenant_id, kind=OperationKind.UPGRADE
        )

    async def downgrade_tenant(
        self,
        tenant_id: str,
        to_plan: str,
        effective: Effective | None = None,
        actor: str = "api",
    ) -> DowngradeStarted:
        """Start downgrading to ``to_plan`` at the billing period's end or immediately
        (``effective``; None: as the plans file's rule for the pair says).

        Raises TenantNotFound, InvalidInput (target not below the current plan),
        PlanChangeNotAllowed (the pair's rule), UsageExceedsLimits (an InvalidInput listing
        each resource over the target's limit) and StateConflict (not ACTIVE; a downgrade
        already pending or running), all before anything starts.
        """
        from workflows.downgrade import DowngradeWorkflow

        preview = await self.downgrade_preview(tenant_id, to_plan)
        tenant = await self.core.repository.get(tenant_id)
        rule = require_allowed(self.core.settings.plans, tenant_id, tenant.plan, to_plan)
        effective = effective or RULE_EFFECTIVE[rule]
        require_active(tenant_id, tenant.state, "downgrade")
        if preview.violations:
            raise UsageExceedsLimits(tenant_id, to_plan, preview.violations)
        catalog = self.core.settings.plans
        data = plan_change_input(
            catalog,
            tenant_id,
            tenant.plan,
            catalog.get(to_plan),
            effective=effective,
            proration_behavior=self.core.settings.proration_behavior,
            actor=actor,
        )
        started = await self.core.start(
            DowngradeWorkflow.run, data, tenant_id=tenant_id, kind=OperationKind.DOWNGRADE
        )
        return DowngradeStarted(**started.model_dump(), effective=effective)

    async def plan_change_preview(self, tenant_id: str, to_plan: str) -> PlanChangePreview:
        """What a change of plan to ``to_plan`` would do, starting nothing: the plans file's
        rule, the usage check (a downgrade), the entitlement diff and the prorated amount
        from Stripe's invoice preview (``available: false`` in limited mode).

        Raises TenantNotFound and InvalidInput (unknown plan, or the tenant's own plan).
        """
        from activities.billing import make_stripe_client, preview_price_change

        tenant = await self.core.repository.get(tenant_id)
        settings, catalog = self.core.settings, self.core.settings.plans
        target = catalog.get(to_plan)
        if target.name == tenant.plan:
            raise InvalidInput(f"to_plan: tenant '{tenant_id}' is already on plan '{to_plan}'")
        upgrade = catalog.rank(target.name) > catalog.rank(tenant.plan)
        rule = catalog.rule(tenant.plan, target.name)
        effective = RULE_EFFECTIVE.get(rule)
        violations = [] if upgrade else usage_violations(tenant.usage, target.limits)
        reasons = [str(v) for v in violations]
        if rule == "not_allowed":
            reasons.insert(0, f"the plans file's rule [changes.{tenant.plan}] {to_plan}")
        if tenant.state is not TenantState.ACTIVE:
            reasons.append(f"tenant is {tenant.state.value}; a plan change needs ACTIVE")
        behavior = settings.proration_behavior if effective == "immediately" else "none"
        key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
        proration = await preview_price_change(
            make_stripe_client(key, settings.stripe_api_base),
            tenant.billing_subscription_id,
            target.price_id,
            behavior,
        )
        return PlanChangePreview(
            tenant_id=tenant_id,
            from_plan=tenant.plan,
            to_plan=target.name,
            direction="upgrade" if upgrade else "downgrade",
            rule=rule,
            effective=effective,
            allowed=not reasons,
            reasons=reasons,
            usage=tenant.usage,
            limits=target.limits.as_dict(),
            violations=violations,
            entitlements=entitlement_diff(tenant.entitlements, target.limits.as_dict()),
            proration=proration,
        )

    async def downgrade_preview(self, tenant_id: str, to_plan: str) -> DowngradePreview:
        """Would a downgrade to ``to_plan`` be accepted by usage? Starts nothing.

        Raises TenantNotFound and InvalidInput (target not below the current plan).
        """
        tenant = await self.core.repository.get(tenant_id)
        target = self.core.settings.plans.require_downgrade(tenant.plan, to_plan)
        violations = usage_violations(tenant.usage, target.limits)
        return DowngradePreview(
            tenant_id=tenant_id,
            from_plan=tenant.plan,
            to_plan=target.name,
            allowed=not violations,
            usage=tenant.usage,
            limits=target.limits.as_dict(),
            violations=violations,
        )

    async def cancel_downgrade(self, tenant_id: str, actor: str = "api") -> str:
        """Signal ``cancel_downgrade`` to the tenant's pending downgrade; returns its workflow
        id. Raises TenantNotFound and StateConflict when no downgrade is pending."""
        from workflows.downgrade import DowngradeWorkflow

        tenant = await self.core.repository.get(tenant_id)
        pending = tenant.pending_plan_change or {}
        wid = pending.get("workflow_id")
        conflict = StateConflict(
            f"tenant '{tenant_id}' has no pending downgrade (state {tenant.state.value}, "
            f"plan '{tenant.plan}')"
        )
        if not wid:
            raise conflict
        try:
            await self.core.handle(wid).signal(
                DowngradeWorkflow.cancel_downgrade, CancelDowngrade(actor=actor)
            )
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise conflict from exc
            raise
        return wid

    async def cancel_upgrade(
        self, tenant_id: str, actor: str = "api", reason: str = "on request"
    ) -> str:
        """Cancel the tenant's running upgrade (Temporal cancellation naming ``actor``,
        :func:`~lifecycle.domain.plan_changes.cancel_reason`); the saga lets a step in flight
        finish, compensates from Stripe's state and ends Canceled. Returns the workflow id;
        raises StateConflict when no upgrade runs."""
        wid = workflow_id(tenant_id, OperationKind.UPGRADE)
        try:
            await self.core.handle(wid).cancel(reason=cancel_reason(actor, reason))
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise StateConflict(f"tenant '{tenant_id}' has no running upgrade") from exc
            raise
        return wid

    async def record_usage(self, tenant_id: str, usage: dict[str, int]) -> UsageView:
        """Record current usage (resource -> amount; unnamed resources keep their value).

        Usage above the current entitlements is recorded and listed in ``over_limit``.
        Raises TenantNotFound and InvalidInput (unknown resource, negative amount).
        """
        tenant = await self.core.repository.record_usage(tenant_id, check_usage_update(usage))
        return UsageView(
            tenant_id=tenant_id,
            usage=tenant.usage,
            entitlements=tenant.entitlements,
            over_limit=usage_violations(tenant.usage, tenant.entitlements),
        )
