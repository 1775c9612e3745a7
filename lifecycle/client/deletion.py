"""The :class:`~lifecycle.client.lifecycle.LifecycleClient` methods of soft deletion, legal hold,
reactivation, suspension and billing events (mixed into the client).

Each method checks the tenant's state first and raises the precise domain error (404
TenantNotFound, 409 StateConflict naming the state or the reason, 422 InvalidInput) before
anything starts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from lifecycle.domain.deletion import (
    REACTIVATION_DISABLED,
    CertificateView,
    DeleteRequest,
    DeletionInput,
    InvoicePaid,
    LegalHoldChange,
    LegalHoldRequest,
    LegalHoldSignal,
    PaymentFailureInput,
    ReactivateRequest,
    ReactivationInput,
    SuspendRequest,
    SuspensionInput,
    purged_detail,
)
from lifecycle.domain.errors import LifecycleError, StateConflict
from lifecycle.domain.operations import OperationKind, workflow_id
from lifecycle.domain.states import TenantState
from lifecycle.persistence.deletion import DeletionRepository

if TYPE_CHECKING:
    from lifecycle.client.lifecycle import LifecycleClient

S = TenantState


class CertificateNotFound(LifecycleError):
    """The tenant has no deletion certificate (it was not purged)."""

    status = 404
    title = "Not found"


def _not_found(exc: RPCError) -> bool:
    return exc.status == RPCStatusCode.NOT_FOUND


class DeletionOperations:
    """Mixin of :class:`LifecycleClient`; ``self`` is the client."""

    def deletions(self: LifecycleClient) -> DeletionRepository:
        return DeletionRepository(self.repository.sessions)

    async def delete_tenant(
        self: LifecycleClient, tenant_id: str, request: DeleteRequest, actor: str = "api"
    ) -> dict[str, Any]:
        """Soft-delete an ACTIVE or SUSPENDED tenant (GDPR Art. 17) with a retention window
        of ``request.retention_days`` (default SOFT_DELETE_RETENTION_DAYS, 30..90).

        Returns ``deletion_id`` (the workflow run), ``workflow_id`` (``tenant-<id>-deletion``),
        ``can_reactivate``, ``retention_days`` and ``hard_delete_scheduled_at`` (UTC, the
        workflow's start plus the retention). Raises TenantNotFound, StateConflict.
        """
        from workflows.deletion import DeletionWorkflow

        tenant = await self.repository.get(tenant_id)
        if tenant.state not in (S.ACTIVE, S.SUSPENDED):
            raise StateConflict(
                f"tenant '{tenant_id}' is {tenant.state}; delete needs state ACTIVE or SUSPENDED"
            )
        days = request.retention_days or self.settings.soft_delete_retention_days
        data = DeletionInput(
            tenant_id=tenant_id,
            requested_by=request.requested_by,
            reason=request.reason,
            retention_days=days,
            reactivation_enabled=self.settings.enable_reactivation_workflow,
            actor=actor,
        )
        started = await self.start(
            DeletionWorkflow.run, data, tenant_id=tenant_id, kind=OperationKind.DELETION
        )
        # the workflow counts retention from its start time, which the server fixed
        desc = await self.handle(started.workflow_id).describe()
        return {
            **started.as_dict(),
            "deletion_id": started.run_id,
            "can_reactivate": self.settings.enable_reactivation_workflow,
            "retention_days": days,
            "hard_delete_scheduled_at": (desc.start_time + timedelta(days=days)).isoformat(),
        }

    async def reactivate_tenant(
        self: LifecycleClient, tenant_id: str, request: ReactivateRequest, actor: str = "api"
    ) -> dict[str, Any]:
        """Reactivate a SUSPENDED tenant (reactivation workflow) or a DELETED one within its
        retention (the deletion workflow's ``request_reactivation`` update: the same as the
        ``reactivate`` signal, but rejected synchronously with the reason).

        Raises InvalidInput (unknown plan), TenantNotFound, StateConflict: wrong state,
        purged (``purged at ...``), purge running, retention over, or
        ENABLE_REACTIVATION_WORKFLOW=false.
        """
        from workflows.deletion import DeletionWorkflow
        from workflows.reactivation import ReactivationWorkflow

        if request.plan is not None:
            self.settings.plans.get(request.plan)
        tenant = await self.repository.get(tenant_id)
        if tenant.state is S.SUSPENDED:
            started = await self.start(
                ReactivationWorkflow.run,
                ReactivationInput(tenant_id=tenant_id, plan=request.plan, actor=actor),
                tenant_id=tenant_id,
                kind=OperationKind.REACTIVATE,
            )
            return started.as_dict()
        if tenant.state is not S.DELETED:
            raise StateConflict(
                f"tenant '{tenant_id}' is {tenant.state}; reactivate needs state SUSPENDED or "
                "DELETED"
            )
        if tenant.purged_at is not None:
            raise StateConflict(purged_detail(tenant_id, tenant.purged_at.isoformat()))
        if not self.settings.enable_reactivation_workflow:
            raise StateConflict(REACTIVATION_DISABLED)
        wid = workflow_id(tenant_id, OperationKind.DELETION)
        update = request.model_copy(update={"requested_by": request.requested_by or actor})
        try:
            await self.handle(wid).execute_update(DeletionWorkflow.request_reactivation, update)
        except WorkflowUpdateFailedError as exc:
            cause = exc.cause
            raise StateConflict(
                cause.message if isinstance(cause, ApplicationError) else str(cause)
            ) from exc
        except RPCError as exc:
            if not _not_found(exc):
                raise
            raise StateConflict(
                f"tenant '{tenant_id}' is DELETED but its deletion workflow {wid} is not running "
                f"(see GET /operations/{wid})"
            ) from exc
        return {
            "workflow_id": wid,
            "run_id": None,
            "tenant_id": tenant_id,
            "operation": OperationKind.REACTIVATE.value,
            "status": "accepted",
        }

    async def suspend_tenant(
        self: LifecycleClient, tenant_id: str, request: SuspendRequest, actor: str = "api"
    ) -> dict[str, Any]:
        """Suspend an ACTIVE tenant: access revoked, subscription kept. Raises
        TenantNotFound, StateConflict naming the state."""
        from workflows.suspension import SuspensionWorkflow

        tenant = await self.repository.get(tenant_id)
        if tenant.state is not S.ACTIVE:
            raise StateConflict(
                f"tenant '{tenant_id}' is {tenant.state}; suspend needs state ACTIVE"
            )
        started = await self.start(
            SuspensionWorkflow.run,
            SuspensionInput(tenant_id=tenant_id, reason=request.reason, actor=actor),
            tenant_id=tenant_id,
            kind=OperationKind.SUSPEND,
        )
        return started.as_dict()

    async def set_legal_hold(
        self: LifecycleClient,
        tenant_id: str,
        hold: bool,
        request: LegalHoldRequest | None = None,
        actor: str = "api",
    ) -> dict[str, Any]:
        """Set (``hold``) or release a legal hold. While a deletion runs this is a signal to
        it (which writes ``tenants.legal_hold`` and the audit row); otherwise the row is
        written here. Raises TenantNotFound, StateConflict (purged, or its purge started)."""
        from workflows.deletion import DeletionWorkflow

        request = request or LegalHoldRequest()
        who = request.requested_by or actor
        tenant = await self.repository.get(tenant_id)
        if tenant.purged_at is not None:
            raise StateConflict(purged_detail(tenant_id, tenant.purged_at.isoformat()))
        wid = workflow_id(tenant_id, OperationKind.DELETION)
        answer = {"tenant_id": tenant_id, "legal_hold": hold, "status": "accepted"}
        if tenant.state in (S.DELETING, S.DELETED):
            handle = self.handle(wid)
            try:
                progress = await handle.query(DeletionWorkflow.progress)
                if progress["phase"] in ("purging", "purged"):
                    raise StateConflict(
                        f"tenant '{tenant_id}' is being purged; a legal hold comes too late"
                    )
                signal = LegalHoldSignal(hold=hold, reason=request.reason, requested_by=who)
                await handle.signal(DeletionWorkflow.set_legal_hold, signal)
                return {**answer, "workflow_id": wid}
            except RPCError as exc:
                if not _not_found(exc):
                    raise
        await self.deletions().set_legal_hold(
            LegalHoldChange(tenant_id=tenant_id, hold=hold, actor=who, reason=request.reason)
        )
        return {**answer, "workflow_id": None}

    async def deletion_certificate(self: LifecycleClient, tenant_id: str) -> CertificateView:
        """The tenant's deletion certificate. Raises TenantNotFound, CertificateNotFound."""
        tenant = await self.repository.get(tenant_id)
        certificate = await self.deletions().certificate(tenant_id)
        if certificate is None:
            raise CertificateNotFound(
                f"tenant '{tenant_id}' has no deletion certificate: it is {tenant.state} and "
                "was not purged"
            )
        return certificate

    # -- billing events ------------------------------------------------------------------

    async def payment_failed(
        self: LifecycleClient, tenant_id: str, invoice_id: str | None, event_id: str
    ) -> str:
        """Start the grace period (PAYMENT_FAILURE_GRACE_DAYS) of a failed payment; returns
        what was done."""
        from workflows.suspension import PaymentFailureWorkflow

        data = PaymentFailureInput(
            tenant_id=tenant_id,
            invoice_id=invoice_id,
            event_id=event_id,
            grace_days=self.settings.payment_failure_grace_days,
            auto_downgrade=self.settings.enable_auto_downgrade,
        )
        try:
            started = await self.start(
                PaymentFailureWorkflow.run,
                data,
                tenant_id=tenant_id,
                kind=OperationKind.PAYMENT_FAILURE,
            )
        except StateConflict:
            return "a payment failure of this tenant is already in its grace period"
        return f"grace period of {data.grace_days} days started ({started.workflow_id})"

    async def invoice_paid(
        self: LifecycleClient, tenant_id: str, invoice_id: str | None, event_id: str
    ) -> str:
        """Cancel a pending payment-failure suspension; returns what was done."""
        from workflows.suspension import PaymentFailureWorkflow

        wid = workflow_id(tenant_id, OperationKind.PAYMENT_FAILURE)
        try:
            await self.handle(wid).signal(
                PaymentFailureWorkflow.invoice_paid,
                InvoicePaid(invoice_id=invoice_id, event_id=event_id),
            )
        except RPCError as exc:
            if not _not_found(exc):
                raise
            return "no payment failure pending"
        return f"pending suspension cancelled ({wid})"
