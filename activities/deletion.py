"""Control-plane activities of soft deletion, legal hold, purge and reactivation."""

from __future__ import annotations

from temporalio import activity

from activities import domain_errors
from lifecycle.config import Settings
from lifecycle.domain.deletion import (
    BeginPurgeInput,
    CertificateView,
    CompletePurgeInput,
    LegalHoldChange,
)
from lifecycle.domain.plans import ResolvedPlan
from lifecycle.domain.tenants import TenantEvent, TenantView
from lifecycle.persistence.deletion import DeletionRepository
from lifecycle.storage.datamap import DataMap, coverage, load_datamap


class DeletionActivities:
    """Each method one transaction on the control-plane database, safe to retry."""

    def __init__(self, settings: Settings, repository: DeletionRepository) -> None:
        self.settings, self.repository = settings, repository

    @activity.defn
    @domain_errors
    async def resolve_plan(self, name: str | None) -> ResolvedPlan:
        """Limits, price id and the plans below plan ``name`` (None: the lowest plan) from the
        plans file, with the upgrade's proration (PRORATION_BEHAVIOR); InvalidInput
        (non-retryable) names the known plans."""
        catalog = self.settings.plans
        plan = catalog.plans[0] if name is None else catalog.get(name)
        return ResolvedPlan(
            name=plan.name,
            limits=plan.limits.as_dict(),
            price_id=plan.price_id,
            below=catalog.names()[: catalog.rank(plan.name)],
            upgrade_proration=self.settings.proration_behavior,
        )

    @activity.defn
    @domain_errors
    async def set_legal_hold(self, change: LegalHoldChange) -> TenantView:
        """Write ``tenants.legal_hold`` and its audit row."""
        return await self.repository.set_legal_hold(change)

    @activity.defn
    @domain_errors
    async def begin_purge(self, data: BeginPurgeInput) -> TenantView:
        """Compare-and-set opening the purge (LegalHoldActive / StateConflict otherwise)."""
        return await self.repository.begin_purge(data.tenant_id, data.workflow_id)

    @activity.defn
    @domain_errors
    async def complete_purge(self, data: CompletePurgeInput) -> CertificateView:
        """Seal the deletion certificate (Ed25519 under CERTIFICATE_SIGNING_KEY) and
        tombstone the tenant; the certificate's
        ``coverage`` lists every store checked and the data map's ignored tables."""
        datamap = load_datamap(self.settings.data_map_path) if self.settings.data_map_path else None
        checked = coverage(datamap or DataMap(), sorted(data.before))
        return await self.repository.complete_purge(data, self.settings.certificate_key(), checked)

    @activity.defn
    async def record_tenant_event(self, event: TenantEvent) -> None:
        """Append an audit row that is not a state change."""
        await self.repository.tenants.record_event(
            event.tenant_id,
            event.operation,
            workflow_id=event.workflow_id,
            actor=event.actor,
            detail=event.detail,
        )
