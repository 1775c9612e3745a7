"""The outbox of lifecycle events on SQLite and PostgreSQL (issue 17, item 5): which audit rows
emit which event, once, in the audit row's transaction, numbered per tenant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lifecycle.domain.billing import BillingResult
from lifecycle.domain.deletion import CompletePurgeInput
from lifecycle.domain.exports import ExportUpdate
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest
from lifecycle.domain.states import TenantState as S
from lifecycle.domain.tenants import TransitionInput
from lifecycle.persistence.deletion import DeletionRepository
from lifecycle.persistence.events import EventRepository
from lifecycle.persistence.exports import ExportRepository
from lifecycle.persistence.tenants import TenantRepository
from tests.persistence.test_deletion import _deleted
from tests.support.fixtures import uid

WF = "tenant-x-upgrade"


async def move(repo: TenantRepository, tenant: str, src: S, dst: S, **changes: str) -> None:
    await repo.transition(
        TransitionInput(
            tenant_id=tenant,
            from_states=[src],
            to_state=dst,
            operation="upgrade",
            workflow_id=WF,
            changes=changes,
        )
    )


async def test_audit_rows_emit_their_events_once_in_sequence(
    repository: TenantRepository,
) -> None:
    deletion = DeletionRepository(repository)
    tenant = await _deleted(deletion)  # onboarded, DELETING, DELETED
    events = EventRepository(repository.sessions)
    assert [e.type for e in await events.events(tenant)] == ["tenant.activated", "tenant.deleted"]

    await repository.record_event(tenant, "dunning-step", workflow_id="w", detail={"step": 1})
    await repository.record_event(tenant, "compensation", workflow_id="w")  # no event
    exports = ExportRepository(repository.sessions)
    await exports.create(
        export_id="e" * 32,
        tenant_id=tenant,
        workflow_id="wx",
        export_type="full",
        requested_by="dpo",
        estimated_completion=datetime.now(UTC),
    )
    done = ExportUpdate(export_id="e" * 32, status="completed", sha256="f" * 64, size_bytes=9)
    await exports.update(done)
    await exports.update(done)  # a retried activity: no second event
    now = datetime.now(UTC)
    await deletion.begin_purge(tenant, "tenant-x-deletion")
    purge = CompletePurgeInput(
        tenant_id=tenant,
        workflow_id="tenant-x-deletion",
        requested_by="dpo",
        requested_at=now - timedelta(days=30),
        purged_at=now,
        retention_days=30,
        before={},
        after={},
        billing={"skipped": True},
    )
    key = Ed25519PrivateKey.generate()
    await deletion.complete_purge(purge, key)
    await deletion.complete_purge(purge, key)  # idempotent: no second event

    listed = await events.events(tenant)
    assert [(e.sequence, e.type) for e in listed] == [
        (1, "tenant.activated"),
        (2, "tenant.deleted"),
        (3, "tenant.dunning_step"),
        (4, "tenant.export_ready"),
        (5, "tenant.purged"),
    ]
    assert listed[2].data["detail"] == {"step": 1} and listed[2].data["data_key"] == tenant
    assert listed[3].data["export_id"] == "e" * 32 and listed[3].data["sha256"] == "f" * 64
    assert [e.event_id for e in await events.undispatched()] == [e.event_id for e in listed]


async def test_a_plan_change_emits_only_when_the_plan_moved(repository: TenantRepository) -> None:
    other = uid("plan")
    await repository.create_tenant(
        CreateTenantInput(
            request=OnboardRequest(tenant_id=other, name="B", email="b@b.io", plan="starter"),
            limits={},
            billing=BillingResult(),
            workflow_id="seed",
            actor="test",
        )
    )
    await move(repository, other, S.ACTIVE, S.UPGRADING)
    await move(repository, other, S.UPGRADING, S.ACTIVE)  # compensated: same plan
    await move(repository, other, S.ACTIVE, S.UPGRADING)
    await move(repository, other, S.UPGRADING, S.ACTIVE, plan="professional")
    listed = await EventRepository(repository.sessions).events(other)
    assert [e.type for e in listed] == ["tenant.activated", "tenant.plan_changed"]
    changed = listed[1].data
    assert (changed["previous_plan"], changed["plan"]) == ("starter", "professional")


async def test_an_attempt_ending_after_the_delivery_gave_up_leaves_it_failed(
    repository: TenantRepository,
) -> None:
    """The retry window closed while a POST was in flight: the workflow marked the delivery
    failed, then the attempt's own "pending" record came in (seen under a loaded CI: the
    failed delivery vanished from ``status=failed``). Only a redelivery reopens it."""
    tenant = await _deleted(DeletionRepository(repository))
    events = EventRepository(repository.sessions)
    event = (await events.events(tenant))[0]
    (delivery,) = await events.open_deliveries(event.event_id, {0: "http://hook/***"})
    await events.record_attempt(delivery, "pending", status_code=400, error="answered 400")
    await events.mark_failed(delivery, "retries ran out")
    await events.record_attempt(delivery, "pending", status_code=400, error="answered 400")
    (row,) = await events.deliveries(event_id=event.event_id)
    assert (row.status, row.attempts, row.last_error) == ("failed", 2, "answered 400")
    assert await events.open_deliveries(event.event_id, {0: "http://hook/***"}) == [delivery]
    (row,) = await events.deliveries(event_id=event.event_id)
    assert row.status == "pending"
    await events.record_attempt(delivery, "delivered", status_code=200)
    (row,) = await events.deliveries(event_id=event.event_id)
    assert row.status == "delivered" and row.delivered_at is not None
