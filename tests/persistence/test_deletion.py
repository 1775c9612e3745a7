"""Deletion writes on SQLite and on a real PostgreSQL: legal hold, the purge's
compare-and-set, the tombstone with its certificate, the subscription lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lifecycle.domain.billing import BillingResult
from lifecycle.domain.certificate import key_id, verify
from lifecycle.domain.deletion import CompletePurgeInput, LegalHoldChange
from lifecycle.domain.errors import StateConflict
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest
from lifecycle.domain.states import TenantState as S
from lifecycle.domain.tenants import TransitionInput
from lifecycle.persistence.deletion import DeletionRepository, LegalHoldActive
from lifecycle.persistence.tenants import TenantRepository
from tests.support.fixtures import uid

LIMITS = {"users": 3, "storage_gb": 1, "projects": 1, "api_calls_per_day": 1000}
WF = "tenant-x-deletion"


async def _deleted(repo: DeletionRepository) -> str:
    tenant = uid("acme")
    await repo.tenants.create_tenant(
        CreateTenantInput(
            request=OnboardRequest(tenant_id=tenant, name="Acme", email="a@acme.io"),
            limits=LIMITS,
            billing=BillingResult(customer_id="cus_1", subscription_id=f"sub-{tenant}"),
            workflow_id="seed",
            actor="test",
        )
    )
    soon = datetime.now(UTC) + timedelta(days=30)
    for src, dst in ((S.ACTIVE, S.DELETING), (S.DELETING, S.DELETED)):
        await repo.tenants.transition(
            TransitionInput(
                tenant_id=tenant,
                from_states=[src],
                to_state=dst,
                operation="deletion",
                workflow_id=WF,
                # a datetime that crossed Temporal inside dict[str, Any] arrives as a string
                changes={"purge_scheduled_at": soon.isoformat()},
            )
        )
    return tenant


async def test_hold_blocks_the_purge_and_tombstone_is_sealed(
    repository: TenantRepository,
) -> None:
    repo = DeletionRepository(repository)
    tenant = await _deleted(repo)
    assert (await repo.tenants.get(tenant)).purge_scheduled_at is not None
    found = await repo.tenants.tenant_by_subscription(f"sub-{tenant}")
    assert found is not None and found.tenant_id == tenant

    hold = LegalHoldChange(tenant_id=tenant, hold=True, actor="legal", reason="case 7")
    await repo.set_legal_hold(hold)
    await repo.set_legal_hold(hold)  # no change: no second audit row
    with pytest.raises(LegalHoldActive, match="under legal hold"):
        await repo.begin_purge(tenant, WF)
    await repo.set_legal_hold(hold.model_copy(update={"hold": False}))
    await repo.begin_purge(tenant, WF)
    await repo.begin_purge(tenant, WF)  # retried activity: idempotent

    now = datetime.now(UTC)
    data = CompletePurgeInput(
        tenant_id=tenant,
        workflow_id=WF,
        requested_by="dpo",
        requested_at=now - timedelta(days=30),
        purged_at=now,
        retention_days=30,
        before={"exports": {"files": 2, "bytes": 9}},
        after={"exports": {"files": 0, "bytes": 0}},
        billing={"skipped": True},
    )
    key = Ed25519PrivateKey.generate()
    public = {key_id(key.public_key()): key.public_key()}
    cert = await repo.complete_purge(data, key)
    assert await repo.complete_purge(data, key) == cert
    assert verify(cert.model_dump(mode="json"), public).problems == []
    kept = await repo.certificate(tenant)
    assert kept is not None and verify(kept.model_dump(mode="json"), public).valid
    assert kept.algorithm == "Ed25519" and len(kept.signature) == 128
    tomb = await repo.tenants.get(tenant)
    assert tomb.state is S.DELETED and tomb.name is None and tomb.email is None
    assert tomb.purged_at == now and tomb.billing_customer_id is None and tomb.entitlements == {}
    ops = [e.operation for e in await repo.tenants.events(tenant)]
    assert ops[-4:] == ["legal-hold", "legal-hold-released", "purge-started", "purged"]
    with pytest.raises(StateConflict, match="was purged at"):
        await repo.set_legal_hold(hold)


async def test_purge_refused_unless_deleted(repository: TenantRepository) -> None:
    repo = DeletionRepository(repository)
    tenant = await _deleted(repo)
    await repo.tenants.transition(
        TransitionInput(
            tenant_id=tenant,
            from_states=[S.DELETED],
            to_state=S.REACTIVATING,
            operation="deletion",
            workflow_id=WF,
            reactivation=True,
        )
    )
    with pytest.raises(StateConflict, match="is REACTIVATING; the purge needs state DELETED"):
        await repo.begin_purge(tenant, WF)
