"""Soft deletion (GDPR Art. 17), legal hold and deletion certificates.

Each method checks the tenant's state first and raises the precise domain error (404
TenantNotFound, 409 StateConflict naming the state or the reason, 422 InvalidInput) before
anything starts."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

from temporalio.service import RPCError

from lifecycle.client.base import Service, not_found
from lifecycle.domain.deletion import (
    CertificateKey,
    CertificateKeys,
    CertificateNotFound,
    CertificateView,
    DeleteRequest,
    DeletionInput,
    DeletionStarted,
    LegalHoldAccepted,
    LegalHoldChange,
    LegalHoldRequest,
    LegalHoldSignal,
    PurgeNowAccepted,
    PurgeNowRequest,
    RetentionWaiverRequest,
    purged_detail,
)
from lifecycle.domain.errors import ConfigError, InvalidInput, StateConflict
from lifecycle.domain.operations import OperationKind, workflow_id
from lifecycle.domain.states import TenantState
from lifecycle.persistence.deletion import DeletionRepository


class DeletionService(Service):
    """Starts deletions, sets legal holds and reads certificates."""

    @cached_property
    def deletions(self) -> DeletionRepository:
        """The deletion-specific control-plane writes."""
        return DeletionRepository(self.core.repository)

    async def delete_tenant(
        self, tenant_id: str, request: DeleteRequest, actor: str = "api"
    ) -> DeletionStarted:
        """Soft-delete an ACTIVE or SUSPENDED tenant (GDPR Art. 17) with a retention window
        of ``request.retention_days`` (default SOFT_DELETE_RETENTION_DAYS, 30..90).

        Returns ``deletion_id`` (the workflow run), ``workflow_id`` (``tenant-<id>-deletion``),
        ``can_reactivate``, ``retention_days`` and ``hard_delete_scheduled_at`` (UTC, the
        workflow's start plus the retention). Raises TenantNotFound, StateConflict.
        """
        from workflows.deletion import DeletionWorkflow

        tenant = await self.core.repository.get(tenant_id)
        if tenant.state not in (TenantState.ACTIVE, TenantState.SUSPENDED):
            raise StateConflict(
                f"tenant '{tenant_id}' is {tenant.state}; delete needs state ACTIVE or SUSPENDED"
            )
        days = request.retention_days or self.core.settings.soft_delete_retention_days
        data = DeletionInput(
            tenant_id=tenant_id,
            requested_by=request.requested_by,
            reason=request.reason,
            retention_days=days,
            reactivation_enabled=self.core.settings.enable_reactivation_workflow,
            actor=actor,
        )
        started = await self.core.start(
            DeletionWorkflow.run, data, tenant_id=tenant_id, kind=OperationKind.DELETION
        )
        # the workflow counts retention from its start time, which the server fixed
        desc = await self.core.handle(started.workflow_id).describe()
        return DeletionStarted(
            **started.model_dump(),
            deletion_id=started.run_id,
            can_reactivate=self.core.settings.enable_reactivation_workflow,
            retention_days=days,
            hard_delete_scheduled_at=(desc.start_time + timedelta(days=days)).isoformat(),
        )

    async def set_legal_hold(
        self,
        tenant_id: str,
        hold: bool,
        request: LegalHoldRequest | None = None,
        actor: str = "api",
    ) -> LegalHoldAccepted:
        """Set (``hold``) or release a legal hold. While a deletion runs this is a signal to
        it (which writes ``tenants.legal_hold`` and the audit row); otherwise the row is
        written here. Raises TenantNotFound, StateConflict (purged, or its purge started)."""
        from workflows.deletion import DeletionWorkflow

        request = request or LegalHoldRequest()
        who = request.requested_by or actor
        tenant = await self.core.repository.get(tenant_id)
        if tenant.purged_at is not None:
            raise StateConflict(purged_detail(tenant_id, tenant.purged_at.isoformat()))
        wid = workflow_id(tenant_id, OperationKind.DELETION)
        answer = LegalHoldAccepted(tenant_id=tenant_id, legal_hold=hold)
        if tenant.state in (TenantState.DELETING, TenantState.DELETED):
            handle = self.core.handle(wid)
            try:
                progress = await handle.query(DeletionWorkflow.progress)
                if progress.phase in ("purging", "purged"):
                    raise StateConflict(
                        f"tenant '{tenant_id}' is being purged; a legal hold comes too late"
                    )
                signal = LegalHoldSignal(hold=hold, reason=request.reason, requested_by=who)
                await handle.signal(DeletionWorkflow.set_legal_hold, signal)
                return answer.model_copy(update={"workflow_id": wid})
            except RPCError as exc:
                if not not_found(exc):
                    raise
        await self.deletions.set_legal_hold(
            LegalHoldChange(tenant_id=tenant_id, hold=hold, actor=who, reason=request.reason)
        )
        return answer

    async def purge_now(
        self, tenant_id: str, request: PurgeNowRequest, actor: str = "api"
    ) -> PurgeNowAccepted:
        """Waive the rest of a DELETED tenant's retention and purge it now, on the customer's
        written request for immediate erasure (GDPR Art. 17(1)): the deletion workflow's
        ``purge_now`` update, whose validator answers at once. The workflow audits the waiver
        (``retention-waived``) and the certificate records it as ``retention_waived``.

        Raises InvalidInput (``confirm`` is not exactly the tenant id), TenantNotFound,
        StateConflict: not DELETED, purged, purge started, legal hold, being reactivated,
        already waived, retention already over, or no deletion workflow running.
        """
        from workflows.deletion import DeletionWorkflow

        if request.confirm != tenant_id:
            raise InvalidInput(
                f"confirm must repeat the tenant id '{tenant_id}' exactly; got '{request.confirm}'"
            )
        tenant = await self.core.repository.get(tenant_id)
        if tenant.purged_at is not None:
            raise StateConflict(purged_detail(tenant_id, tenant.purged_at.isoformat()))
        if tenant.state is not TenantState.DELETED:
            raise StateConflict(
                f"tenant '{tenant_id}' is {tenant.state}; purge needs state DELETED"
            )
        # the legal hold is checked by the workflow's validator, not on the row: a hold placed
        # or released is a signal the workflow writes to the row a moment later, and signals
        # reach it before this update, so its answer is the current one
        wid = workflow_id(tenant_id, OperationKind.DELETION)
        update = RetentionWaiverRequest(
            requested_by=request.requested_by or actor, reason=request.reason
        )
        waiver = await self.deletion_update(tenant_id, DeletionWorkflow.purge_now, update)
        scheduled = tenant.purge_scheduled_at
        return PurgeNowAccepted(
            tenant_id=tenant_id,
            workflow_id=wid,
            retention_waived=waiver,
            purge_scheduled_at=scheduled.isoformat() if scheduled else "",
        )

    def certificate_keys(self) -> CertificateKeys:
        """The public keys of deletion certificates: the current CERTIFICATE_SIGNING_KEY's
        and the retired ones (CERTIFICATE_RETIRED_KEYS). Raises ConfigError on a bad key."""
        from lifecycle.domain.certificate import key_id, load_public_key, public_pem

        current = self.core.settings.certificate_key().public_key()
        keys = [
            CertificateKey(kid=key_id(current), public_key=public_pem(current), status="current")
        ]
        for path in self.core.settings.certificate_retired_keys:
            try:
                retired = load_public_key(path.read_bytes())
            except (OSError, ValueError) as exc:
                raise ConfigError(f"CERTIFICATE_RETIRED_KEYS: {path}: {exc}") from exc
            keys.append(
                CertificateKey(
                    kid=key_id(retired), public_key=public_pem(retired), status="retired"
                )
            )
        return CertificateKeys(keys=keys)

    async def deletion_certificate(self, tenant_id: str) -> CertificateView:
        """The tenant's deletion certificate. Raises TenantNotFound, CertificateNotFound."""
        tenant = await self.core.repository.get(tenant_id)
        certificate = await self.deletions.certificate(tenant_id)
        if certificate is None:
            raise CertificateNotFound(
                f"tenant '{tenant_id}' has no deletion certificate: it is {tenant.state} and "
                "was not purged"
            )
        return certificate
