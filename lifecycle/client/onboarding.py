"""Onboarding: a new tenant on a plan (workflow ``tenant-<id>-onboard``)."""

from __future__ import annotations

from temporalio.common import WorkflowIDReusePolicy

from lifecycle.client.base import Service
from lifecycle.domain.errors import DataKeyConflict, StateConflict
from lifecycle.domain.onboarding import OnboardInput, OnboardRequest
from lifecycle.domain.operations import OperationKind, OperationStarted
from lifecycle.domain.plans import Plan


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

    async def start_onboarding(
        self, request: OnboardRequest, plan: Plan, actor: str = "api"
    ) -> OperationStarted:
        """Start the onboarding workflow of ``request`` on ``plan`` without reading the
        control plane first (:meth:`onboard_tenant` checks that the tenant is new).

        Raises StateConflict when an onboarding with this id is running or completed.
        """
        from workflows.onboarding import OnboardingWorkflow

        data = OnboardInput(
            request=request, limits=plan.limits.as_dict(), price_id=plan.price_id, actor=actor
        )
        return await self.core.start(
            OnboardingWorkflow.run,
            data,
            tenant_id=request.tenant_id,
            kind=OperationKind.ONBOARD,
            reuse=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )
