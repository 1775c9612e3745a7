"""Plan-change writes of the repository on SQLite and PostgreSQL: entitlements, pending plan
change, usage, and the reset of a reused operation id."""

from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from lifecycle.domain.dunning import DunningStatus, DunningUpdate
from lifecycle.domain.errors import StateConflict, TenantNotFound
from lifecycle.domain.plan_changes import PendingChangeInput, StepEventInput
from lifecycle.domain.states import TenantState as S
from lifecycle.domain.tenants import OperationUpdate, TransitionInput
from lifecycle.persistence.events import EventRepository
from lifecycle.persistence.tenants import TenantRepository
from tests.persistence.test_tenants import LIMITS, _create

PENDING = {"from_plan": "starter", "to_plan": "free", "workflow_id": "wf-down"}


def _pending(change: dict | None, key: str, reason: str | None = None) -> PendingChangeInput:
    return PendingChangeInput(
        tenant_id="acme",
        change=change,
        workflow_id="wf-down",
        operation="downgrade",
        reason=reason,
        key=key,
    )


async def test_replace_entitlements_audits_once_per_key(repository: TenantRepository) -> None:
    await _create(repository)
    event = StepEventInput(
        tenant_id="acme", operation="upgrade", workflow_id="wf", key="wf:run:provision"
    )
    bigger = {**LIMITS, "users": 50}
    await repository.replace_entitlements("acme", bigger, event)
    tenant = await repository.replace_entitlements("acme", bigger, event)  # a retry
    assert tenant.entitlements == bigger and tenant.version == 1  # no state change
    rows = [e for e in await repository.events("acme") if e.operation == "upgrade"]
    assert [(r.detail["key"], r.detail["entitlements"]["users"]) for r in rows] == [
        ("wf:run:provision", 50)
    ]
    with pytest.raises(TenantNotFound):
        await repository.replace_entitlements("nobody", bigger, event)


async def test_replace_entitlements_writes_exactly_the_new_set_with_one_event(
    repository: TenantRepository,
) -> None:
    """Resources the new limits drop are deleted, the others upserted, and the change emits
    one ``tenant.entitlements_changed`` event carrying them; a retry changes nothing more."""
    await _create(repository)
    event = StepEventInput(tenant_id="acme", operation="downgrade", workflow_id="wf", key="k")
    smaller = {"users": 3, "seats": 2}
    await repository.replace_entitlements("acme", smaller, event)
    await repository.replace_entitlements("acme", smaller, event)
    assert (await repository.get("acme")).entitlements == smaller
    changed = [
        e
        for e in await EventRepository(repository.sessions).events("acme")
        if e.type == "tenant.entitlements_changed"
    ]
    assert [(e.sequence, e.data["entitlements"]) for e in changed] == [(2, smaller)]
    assert changed[0].data["detail"] == {"entitlements": smaller, "key": "k"}
    await repository.replace_entitlements("acme", {}, event.model_copy(update={"key": "k2"}))
    assert (await repository.get("acme")).entitlements == {}


async def test_entitlements_keep_read_only_when_dunning_moves_during_the_write(
    repository: TenantRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dunning status decides ``read_only``. A read-only step that lands after the
    provisioning step read the tenant (simulated: the read returns the row from before it)
    must not be lost: the write applies only to the status it was computed from, else it is
    made again under the row lock."""
    if not repository.sessions.autocommits:
        pytest.skip("SQLite reads the tenant inside the write transaction: nothing to race")
    await _create(repository)
    before = await repository.get("acme")
    status = DunningStatus(step="read_only", since=datetime.now(UTC), read_only=True)
    await repository.set_dunning(
        DunningUpdate(tenant_id="acme", workflow_id="wf-dunning", status=status, key="d1")
    )
    stale_reads = []
    tenant_row = TenantRepository._tenant_row

    async def stale_first_read(conn, tenant_id, *, lock=False):  # type: ignore[no-untyped-def]
        row, limits = await tenant_row(conn, tenant_id, lock=lock)
        if not lock and not stale_reads:
            stale_reads.append(row)
            stale = SimpleNamespace(**{**row._asdict(), "dunning": None})  # before the step
            return stale, limits
        return row, limits

    monkeypatch.setattr(TenantRepository, "_tenant_row", staticmethod(stale_first_read))
    event = StepEventInput(tenant_id="acme", operation="upgrade", workflow_id="wf", key="k")
    tenant = await repository.replace_entitlements("acme", {"users": 50}, event)
    assert stale_reads and before.dunning is None
    assert tenant.entitlements == {"users": 50, "read_only": 1}
    assert (await repository.get("acme")).entitlements == {"users": 50, "read_only": 1}
    audited = [e for e in await repository.events("acme") if e.operation == "upgrade"]
    assert len(audited) == 1


async def test_pending_plan_change_set_and_cleared_by_its_workflow_only(
    repository: TenantRepository,
) -> None:
    await _create(repository)
    tenant = await repository.set_pending_plan_change(_pending(PENDING, "k1"))
    assert tenant.pending_plan_change == PENDING and tenant.version == 2
    assert (await repository.set_pending_plan_change(_pending(PENDING, "k1"))).version == 2

    other = _pending(None, "k2", "not mine").model_copy(update={"workflow_id": "wf-other"})
    assert (await repository.set_pending_plan_change(other)).pending_plan_change == PENDING
    cleared = await repository.set_pending_plan_change(_pending(None, "k3", "cancelled"))
    assert cleared.pending_plan_change is None and cleared.version == 3
    details = [e.detail for e in await repository.events("acme") if e.operation == "downgrade"]
    assert [(d["step"], d.get("cleared"), d.get("reason")) for d in details] == [
        ("pending-plan-change", None, None),
        ("pending-plan-change-cleared", False, "not mine"),
        ("pending-plan-change-cleared", True, "cancelled"),
    ]

    with pytest.raises(StateConflict, match="on plan 'starter', not 'professional'"):
        await repository.set_pending_plan_change(
            _pending({**PENDING, "from_plan": "professional"}, "k4")
        )
    await repository.transition(
        TransitionInput(
            tenant_id="acme",
            from_states=[S.ACTIVE],
            to_state=S.SUSPENDED,
            operation="suspend",
            workflow_id="wf-s",
        )
    )
    with pytest.raises(StateConflict, match="is SUSPENDED"):
        await repository.set_pending_plan_change(_pending(PENDING, "k5"))


async def test_record_usage_merges_without_version_bump(repository: TenantRepository) -> None:
    await _create(repository)
    await repository.record_usage("acme", {"users": 5, "storage_gb": 2})
    tenant = await repository.record_usage("acme", {"users": 7})
    assert tenant.usage == {"users": 7, "storage_gb": 2} and tenant.version == 1
    assert (await repository.get("acme")).usage == {"users": 7, "storage_gb": 2}


async def test_a_rerun_under_a_reused_operation_id_adds_a_run_and_keeps_the_first(
    repository: TenantRepository,
) -> None:
    def update(status: str, **fields: object) -> OperationUpdate:
        return OperationUpdate(
            workflow_id="tenant-acme-upgrade",
            tenant_id="acme",
            kind="upgrade",
            status=status,  # type: ignore[arg-type]
            **fields,
        )

    await repository.record_operation(update("running", step="lock"), "run-1")
    await repository.record_operation(
        update("failed", step="failed", error="card declined"), "run-1"
    )
    await repository.record_operation(update("running", step="lock"), "run-2")  # the next run
    op = await repository.operation("tenant-acme-upgrade")
    assert op and (op.run_id, op.status, op.error, op.result, op.finished_at) == (
        "run-2",
        "running",
        None,
        None,
        None,
    )
    await repository.record_operation(update("running", step="billing"), "run-2")
    await repository.record_operation(update("completed", result={"plan": "professional"}), "run-2")
    op = await repository.operation("tenant-acme-upgrade")
    assert op and op.error is None and op.result == {"plan": "professional"}
    runs = await repository.operation_runs("tenant-acme-upgrade")
    assert [(r.run_id, r.status, r.error) for r in runs] == [
        ("run-2", "completed", None),
        ("run-1", "failed", "card declined"),
    ]
    first = await repository.operation("tenant-acme-upgrade", "run-1")
    assert first and first.status == "failed"
    page, total = await repository.tenant_operations("acme")
    assert total == 2 and [r.run_id for r in page] == ["run-2", "run-1"]
    by_status, _ = await repository.operation_stats(())
    assert by_status == {("upgrade", "failed"): 1, ("upgrade", "completed"): 1}


async def test_a_late_step_record_does_not_reopen_an_ended_run(
    repository: TenantRepository,
) -> None:
    """Seen in the 10,000-tenant bulk migration under load: a ``record commit`` attempt that
    timed out committed after the run recorded ``completed``, and the row said running."""
    update = OperationUpdate(
        workflow_id="tenant-acme-upgrade", tenant_id="acme", kind="upgrade", status="completed"
    )
    await repository.record_operation(update, "run-1")
    late = update.model_copy(update={"status": "running", "step": "commit"})
    await repository.record_operation(late, "run-1")
    op = await repository.operation("tenant-acme-upgrade", "run-1")
    assert op and op.status == "completed" and op.finished_at is not None


async def test_a_running_row_recorded_before_run_ids_is_adopted_by_its_run(
    repository: TenantRepository,
) -> None:
    """Rows migrated by 0003 have run_id ''; the run still going on takes its row over
    instead of leaving a phantom running operation behind."""
    update = OperationUpdate(
        workflow_id="tenant-acme-suspend", tenant_id="acme", kind="suspend", status="running"
    )
    await repository.record_operation(update.model_copy(update={"step": "lock"}), "")
    await repository.record_operation(
        update.model_copy(update={"status": "completed", "step": "completed"}), "run-9"
    )
    runs = await repository.operation_runs("tenant-acme-suspend")
    assert [(r.run_id, r.status, r.step) for r in runs] == [("run-9", "completed", "completed")]
    assert runs[0].duration_seconds is not None and runs[0].duration_seconds >= 0
