"""Control-plane writes of soft deletion and purge: legal hold, the purge's compare-and-set,
the tombstone with its deletion certificate, and lookups of billing webhooks.

Each write is one transaction with its audit row, like :class:`TenantRepository`'s.
"""

from __future__ import annotations

from typing import Any, cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select, update
from sqlalchemy.engine import CursorResult

from lifecycle.domain.certificate import HMAC_SHA256, build_document, seal
from lifecycle.domain.deletion import (
    CertificateView,
    CompletePurgeInput,
    LegalHoldChange,
    purged_detail,
)
from lifecycle.domain.errors import DataKeyConflict, StateConflict, TenantNotFound
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TenantView
from lifecycle.persistence.events import emit_for_audit
from lifecycle.persistence.tables import (
    DeletionCertificate,
    Entitlement,
    LifecycleEvent,
    Tenant,
    utcnow,
)
from lifecycle.persistence.tenants import TenantRepository


class LegalHoldActive(StateConflict):
    """A legal hold stands on the tenant: its data must not be purged."""


class DeletionRepository:
    """The deletion-specific writes; tenant rows are read and viewed through ``tenants``."""

    def __init__(self, tenants: TenantRepository) -> None:
        self.tenants = tenants
        self.sessions = tenants.sessions

    async def set_legal_hold(self, change: LegalHoldChange) -> TenantView:
        """Set or release ``tenants.legal_hold`` with an audit row (``legal-hold`` or
        ``legal-hold-released``); a no-op when it already has that value.

        Raises TenantNotFound, or StateConflict when the tenant was already purged.
        """
        async with self.sessions.begin() as session:
            tenant = await session.get(Tenant, change.tenant_id)
            if tenant is None:
                raise TenantNotFound(change.tenant_id)
            if tenant.purged_at is not None:
                raise StateConflict(purged_detail(tenant.id, tenant.purged_at.isoformat()))
            if bool(tenant.legal_hold) != change.hold:
                now = utcnow()
                tenant.legal_hold = change.hold
                tenant.version += 1
                tenant.updated_at = now
                detail = {"reason": change.reason} if change.reason else {}
                session.add(
                    LifecycleEvent(
                        at=now,
                        tenant_id=tenant.id,
                        operation="legal-hold" if change.hold else "legal-hold-released",
                        from_state=None,
                        to_state=None,
                        workflow_id=change.workflow_id,
                        actor=change.actor,
                        detail=detail,
                    )
                )
                await session.flush()
            return await self.tenants.view(session, tenant)

    async def begin_purge(self, tenant_id: str, workflow_id: str) -> TenantView:
        """Compare-and-set that opens the purge: the tenant must be DELETED, not purged and
        not under legal hold; bumps ``version`` and writes a ``purge-started`` audit row.

        Idempotent for the same workflow. Raises TenantNotFound, LegalHoldActive,
        StateConflict naming the state when the tenant is not DELETED (e.g. reactivated), or
        DataKeyConflict when another live tenant holds the same data key (defence in depth
        behind the unique index: the purge would delete that tenant's data too).
        """
        async with self.sessions.begin() as session:
            tenant = await session.get(Tenant, tenant_id)
            if tenant is None:
                raise TenantNotFound(tenant_id)
            holder = await self.tenants._data_key_holder(session, tenant.data_key, tenant_id)
            if holder is not None:
                raise DataKeyConflict(tenant.data_key, holder)
            if await self.tenants.has_event(session, tenant_id, workflow_id, "purge-started"):
                return await self.tenants.view(session, tenant)
            result = await session.execute(
                update(Tenant)
                .where(
                    Tenant.id == tenant_id,
                    Tenant.state == TenantState.DELETED.value,
                    Tenant.purged_at.is_(None),
                    Tenant.legal_hold.is_(False),
                    Tenant.version == tenant.version,
                )
                .values(version=tenant.version + 1, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if cast(CursorResult[Any], result).rowcount != 1:
                if tenant.legal_hold:
                    raise LegalHoldActive(f"tenant '{tenant_id}' is under legal hold")
                raise StateConflict(
                    f"tenant '{tenant_id}' is {tenant.state}"
                    + (f", purged at {tenant.purged_at.isoformat()}" if tenant.purged_at else "")
                    + "; the purge needs state DELETED"
                )
            session.add(
                LifecycleEvent(
                    at=utcnow(),
                    tenant_id=tenant_id,
                    operation="purge-started",
                    from_state=None,
                    to_state=None,
                    workflow_id=workflow_id,
                    actor="system",
                    detail={},
                )
            )
            await session.flush()
            await session.refresh(tenant)
            return await self.tenants.view(session, tenant)

    async def complete_purge(
        self,
        data: CompletePurgeInput,
        key: Ed25519PrivateKey,
        coverage: list[dict[str, str]] | None = None,
    ) -> CertificateView:
        """Seal the deletion certificate and turn the tenant row into a tombstone, in one
        transaction: name, e-mail, billing ids and entitlements removed, ``purged_at`` set,
        state stays DELETED; audit row ``purged`` with the certificate's SHA-256.

        The certificate's ``retention_waived`` ({by, at, reason}, or None) is read from this
        deletion's ``retention-waived`` audit row, so it states exactly what was audited.

        Idempotent: a second call returns the certificate already kept. Raises
        TenantNotFound, or StateConflict when the tenant is not DELETED.
        """
        async with self.sessions.begin() as session:
            kept = await session.get(DeletionCertificate, data.tenant_id)
            if kept is not None:
                return _view(kept)
            tenant = await session.get(Tenant, data.tenant_id)
            if tenant is None:
                raise TenantNotFound(data.tenant_id)
            if tenant.state != TenantState.DELETED.value:
                raise StateConflict(
                    f"tenant '{tenant.id}' is {tenant.state}; the purge needs state DELETED"
                )
            now = utcnow()
            waived = await session.scalar(
                select(LifecycleEvent.detail)
                .where(
                    LifecycleEvent.tenant_id == tenant.id,
                    LifecycleEvent.workflow_id == data.workflow_id,
                    LifecycleEvent.operation == "retention-waived",
                )
                .order_by(LifecycleEvent.id.desc())
                .limit(1)
            )
            waiver = {k: waived[k] for k in ("by", "at", "reason")} if waived is not None else None
            sealed = seal(data.tenant_id, build_document(data, coverage, waiver), key)
            row = DeletionCertificate(
                tenant_id=data.tenant_id,
                workflow_id=data.workflow_id,
                document=sealed.document,
                sha256=sealed.sha256,
                signature=sealed.signature,
                created_at=now,
            )
            session.add(row)
            await session.execute(
                update(Tenant)
                .where(Tenant.id == tenant.id, Tenant.version == tenant.version)
                .values(
                    name=None,
                    email=None,
                    billing_customer_id=None,
                    billing_subscription_id=None,
                    pending_plan_change=None,
                    purged_at=data.purged_at,
                    version=tenant.version + 1,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            await session.execute(delete(Entitlement).where(Entitlement.tenant_id == tenant.id))
            audit = LifecycleEvent(
                at=now,
                tenant_id=tenant.id,
                operation="purged",
                from_state=None,
                to_state=None,
                workflow_id=data.workflow_id,
                actor="system",
                detail={"certificate_sha256": sealed.sha256},
            )
            session.add(audit)
            await emit_for_audit(session, audit)
            await session.flush()
            return _view(row)

    async def certificate(self, tenant_id: str) -> CertificateView | None:
        """The tenant's deletion certificate, or None before the purge."""
        async with self.sessions() as session:
            row = await session.get(DeletionCertificate, tenant_id)
            return None if row is None else _view(row)


def _view(row: DeletionCertificate) -> CertificateView:
    return CertificateView(
        algorithm=str(row.document.get("signature_algorithm", HMAC_SHA256)),
        tenant_id=row.tenant_id,
        document=row.document,
        sha256=row.sha256,
        signature=row.signature,
        created_at=row.created_at,
    )
