"""Onboarding: a new tenant on a plan (workflow ``tenant-<id>-onboard``)."""

from __future__ import annotations

from temporalio.common import WorkflowIDReusePolicy

from lifecycle.client.base import Service
from lifecycle.domain.errors import DataKeyConflict, InvalidInput, StateConflict
from lifecycle.domain.onboarding import OnboardInput, OnboardRequest
from lifecycle.domain.operations import OperationKind, OperationStarted
from lifecycle.domain.plans import Plan
from lifecycle.domain.trials import TrialInput, TrialTerms


class OnboardingService(Service):
    """Starts onboarding workflows."""

    async def onboard_tenant(self, request: OnboardRequest, actor: str = "api") -> OperationStarted:
        """Start onboarding ``request.tenant_id`` on ``request.plan``.

        Raises InvalidInput (unknown plan), StateConflict (tenant exists or is being
        onboarded) and DataKeyConflict (a live tenant holds the data key, which defaults to
        the tenant id; 409 naming the holder) before anything starts.
        """
        plan = self.core.settings.plans.get(request.plan)
        if await self.core.repository.exists(request.tenant_id):
            raise StateConflict(f"tenant '{request.tenant_id}' already exists")
        data_key = request.data_key or request.tenant_id
        holder = await self.core.repository.data_key_holder(data_key, request.tenant_id)
        if holder is not None:
            raise DataKeyConflict(data_key, holder)
        return await self.start_onboarding(request, plan, actor)

    def trial_terms(self, request: OnboardRequest, plan: Plan) -> TrialTerms | None:
        """The trial of ``request`` (None without ``trial_days``): TRIAL_ENDING_NOTICE_DAYS,
        the plan's ``trial_end_behavior`` and, for ``dunning``, its ladder. Raises
        InvalidInput for a trial of a plan that costs nothing."""
        if request.trial_days is None:
            return None
        if plan.monthly_price_cents == 0:
            raise InvalidInput(f"trial_days: plan '{plan.name}' costs nothing, it has no trial")
        settings = self.core.settings
        ladder = settings.plans.dunning_ladder(
            plan.name, settings.payment_failure_grace_days, settings.enable_auto_downgrade
        )
        return TrialTerms(
            days=request.trial_days,
            notice_days=settings.trial_ending_notice_days,
            end_behavior=plan.trial_end_behavior,
            ladder=ladder,
            payment_window_days=settings.dunning_payment_window_days,
            retention_days=settings.soft_delete_retention_days,
        )

    async def start_onboarding(
        self, request: OnboardRequest, plan: Plan, actor: str = "api"
    ) -> OperationStarted:
        """Start the onboarding workflow of ``request`` on ``plan`` without reading the
        control plane first (:meth:`onboard_tenant` checks that the tenant is new).

        Raises StateConflict when an onboarding with this id is running or completed.
        """
        from workflows.onboarding import OnboardingWorkflow
        from workflows.trials import TrialWorkflow

        trial = self.trial_terms(request, plan)
        data = OnboardInput(
            request=request,
            limits=plan.limits.as_dict(),
            price_id=plan.price_id,
            actor=actor,
            trial=trial,
        )
        started = await self.core.start(
            OnboardingWorkflow.run,
            data,
            tenant_id=request.tenant_id,
            kind=OperationKind.ONBOARD,
            reuse=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
        if trial is not None:
            await self.core.start(
                TrialWorkflow.run,
                TrialInput(tenant_id=request.tenant_id, terms=trial),
                tenant_id=request.tenant_id,
                kind=OperationKind.TRIAL,
            )
        return started
