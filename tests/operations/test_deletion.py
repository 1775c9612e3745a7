"""Soft delete, retention, reactivation, legal hold and verified purge in the time-skipping
test server: a 30-day timer passes in milliseconds, data lives in a real SQLite application
database and real files behind a data map."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from redis.asyncio import Redis
from sqlalchemy import text
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from activities.purge import PurgeActivities
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.certificate import key_id, verify
from lifecycle.domain.deletion import (
    DeleteRequest,
    LegalHoldRequest,
    PurgeNowRequest,
    PurgeTarget,
    RetentionWaiverRequest,
)
from lifecycle.domain.errors import InvalidInput, StateConflict
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.faults import FAULT_ENV
from lifecycle.persistence.engine import create_engine
from tests.support.fixtures import make_settings, running_stack, uid
from tests.support.tenant_data import (
    AppData,
    counts,
    make_app_data,
    new_tenant,
    skip_to_result,
    wait_state,
)
from workflows.deletion import DeletionWorkflow

ZERO = {
    "app.projects": {"rows": 0},
    "app.notes": {"rows": 0},
    "storage[0]": {"files": 0, "bytes": 0},
    "exports": {"files": 0, "bytes": 0},
}


@dataclass
class Stack:
    lc: LifecycleClient
    app: AppData
    env: WorkflowEnvironment
    tenant: str
    other: str

    async def counts(self, tenant: str) -> dict[str, dict[str, int]]:
        return await counts(self.app, self.lc.settings.exports_dir, tenant)

    async def delete(self, **fields: object) -> dict:
        request = DeleteRequest(requested_by="dpo@example.com", reason="contract ended", **fields)
        started = await self.lc.deletion.delete_tenant(self.tenant, request)
        await wait_state(self.lc, self.tenant, TenantState.DELETED)
        return started

    def handle(self):
        return self.lc.core.handle(f"tenant-{self.tenant}-deletion")

    async def result(self) -> dict:
        return await skip_to_result(self.env, self.handle())

    async def events(self) -> list[str]:
        return [e.operation for e in await self.lc.repository.events(self.tenant)]


@pytest.fixture
async def stack(time_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    tenant, other = uid("acme"), uid("globex")
    settings = make_settings(tmp_path, purge_batch_rows=4)
    app = await make_app_data(tmp_path, settings.exports_dir, [tenant, other])
    settings.data_map_path = app.datamap
    async with running_stack(time_env, settings) as lc:
        await new_tenant(lc, tenant)
        await new_tenant(lc, other)
        yield Stack(lc, app, time_env, tenant, other)


async def test_purge_after_retention_with_certificate(stack: Stack) -> None:
    started = await stack.delete()
    assert started.workflow_id == f"tenant-{stack.tenant}-deletion"
    assert started.can_reactivate is True and started.retention_days == 30
    tenant = await stack.lc.get_tenant(stack.tenant)
    assert tenant.purge_scheduled_at == datetime.fromisoformat(started.hard_delete_scheduled_at)
    assert set(tenant.entitlements.values()) == {0}  # access revoked at once
    assert tenant.deletion_requested_at is not None
    assert await stack.counts(stack.tenant) == stack.app.expected()  # data untouched

    # never a day early: at day 29.99 nothing is deleted
    await stack.env.sleep(timedelta(days=29, hours=23, minutes=45))
    assert await stack.counts(stack.tenant) == stack.app.expected()
    assert (await stack.handle().query(DeletionWorkflow.progress)).phase == "retained"

    result = await stack.result()
    assert result["outcome"] == "purged"
    assert await stack.counts(stack.tenant) == ZERO
    assert await stack.counts(stack.other) == stack.app.expected()  # other tenants untouched

    tomb = await stack.lc.get_tenant(stack.tenant)
    assert tomb.state is TenantState.DELETED and tomb.purged_at is not None
    assert tomb.name is None and tomb.email is None and tomb.entitlements == {}
    assert tomb.purged_at >= tenant.purge_scheduled_at

    cert = (await stack.lc.deletion.deletion_certificate(stack.tenant)).model_dump(mode="json")
    doc = cert["document"]
    assert doc["tenant_id"] == stack.tenant and doc["requested_by"] == "dpo@example.com"
    assert doc["requested_at"] == tenant.deletion_requested_at.isoformat()
    assert doc["purged_at"] == tomb.purged_at.isoformat()
    assert doc["stores"] == {
        name: {"before": before, "after": ZERO[name]}
        for name, before in stack.app.expected().items()
    }
    public = stack.lc.settings.certificate_key().public_key()
    keys = {key_id(public): public}
    assert doc["kid"] == key_id(public) and doc["signature_algorithm"] == "Ed25519"
    assert verify(cert, keys).problems == []
    tampered = {**cert, "document": {**doc, "requested_by": "someone-else"}}
    assert len(verify(tampered, keys).problems) == 2
    other = Ed25519PrivateKey.generate().public_key()
    assert verify(cert, {key_id(public): other}).problems == [
        f"the Ed25519 signature does not verify under key {key_id(public)}"
    ]
    events = await stack.events()
    assert events[-4:] == ["deletion", "deletion", "purge-started", "purged"]
    with pytest.raises(StateConflict, match=f"tenant '{stack.tenant}' was purged at "):
        await stack.lc.reactivation.reactivate_tenant(stack.tenant, ReactivateRequest())


async def test_reactivate_on_day_29_keeps_data(stack: Stack) -> None:
    await stack.delete()
    await stack.env.sleep(timedelta(days=29))
    accepted = await stack.lc.reactivation.reactivate_tenant(
        stack.tenant, ReactivateRequest(plan="professional")
    )
    assert accepted.workflow_id == f"tenant-{stack.tenant}-deletion"
    result = await stack.result()
    assert result["outcome"] == "reactivated"
    tenant = await stack.lc.get_tenant(stack.tenant)
    assert tenant.state is TenantState.ACTIVE and tenant.plan == "professional"
    assert tenant.entitlements == stack.lc.settings.plans.get("professional").limits.as_dict()
    assert tenant.purge_scheduled_at is None and tenant.deletion_requested_at is None
    assert await stack.counts(stack.tenant) == stack.app.expected()
    assert await stack.lc.deletion.deletions.certificate(stack.tenant) is None
    # the pending purge is gone for good: a further 60 days change nothing
    await stack.env.sleep(timedelta(days=60))
    assert await stack.counts(stack.tenant) == stack.app.expected()
    assert "purge-started" not in await stack.events()


async def test_legal_hold_outlasts_the_timer(stack: Stack) -> None:
    await stack.delete()
    await stack.lc.deletion.set_legal_hold(
        stack.tenant, True, LegalHoldRequest(reason="litigation")
    )
    await stack.env.sleep(timedelta(days=45))
    assert await stack.counts(stack.tenant) == stack.app.expected()
    assert (await stack.lc.get_tenant(stack.tenant)).legal_hold is True
    progress = await stack.handle().query(DeletionWorkflow.progress)
    assert progress.phase == "retained" and progress.legal_hold is True
    # after retention the tenant cannot come back, even under hold
    with pytest.raises(StateConflict, match="retention period .* ended at"):
        await stack.lc.reactivation.reactivate_tenant(stack.tenant, ReactivateRequest())

    await stack.lc.deletion.set_legal_hold(stack.tenant, False)
    assert (await stack.result())["outcome"] == "purged"
    assert await stack.counts(stack.tenant) == ZERO
    events = await stack.events()
    assert events.index("legal-hold") < events.index("legal-hold-released")
    assert events.index("legal-hold-released") < events.index("purge-started")


async def test_reactivation_in_the_last_second_wins_over_the_timer(stack: Stack) -> None:
    """A reactivation signal one second before the retention timer fires, the timer firing
    right after it: the workflow took the reactivation, and the timer firing meanwhile
    changes nothing (no purge, data intact).

    This used to send the signal and skip time concurrently. The time-skipping test server
    wedges on that race (in 1 run of 33, more often once operation steps became local
    activities): when the timer fires while the signal's workflow task is in flight, it
    rejects the task's completion ("invalid history builder state for action") and never
    hands the task out again (temporalio/sdk-java#3088; the real server redelivers it). So the
    signal's workflow task is now awaited before the timer is reached; the purge winning a
    late signal is ``test_signal_after_purge_started_is_ignored_and_audited``.
    """
    await stack.delete()
    await stack.env.sleep(timedelta(days=29, hours=23, minutes=59, seconds=59))
    await stack.handle().signal(DeletionWorkflow.reactivate, ReactivateRequest())
    for _ in range(400):
        progress = await stack.handle().query(DeletionWorkflow.progress)
        if progress.phase != "retained":
            break
        await asyncio.sleep(0.05)
    assert progress.phase in ("reactivating", "reactivated")
    await stack.env.sleep(timedelta(seconds=2))
    result = await stack.result()
    assert result["outcome"] == "reactivated"
    tenant = await stack.lc.get_tenant(stack.tenant)
    assert tenant.state is TenantState.ACTIVE and tenant.purged_at is None
    assert await stack.counts(stack.tenant) == stack.app.expected()
    assert await stack.lc.deletion.deletions.certificate(stack.tenant) is None
    assert "purge" not in await stack.events()


async def test_signal_after_purge_started_is_ignored_and_audited(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a crash mid-purge keeps the purge running for the retry's back-off (1 s, time locked)
    monkeypatch.setenv(FAULT_ENV, "raise:purge.batch:app.notes@1")
    await stack.delete()
    await stack.env.sleep(timedelta(days=30, seconds=1))
    for _ in range(200):
        if (await stack.handle().query(DeletionWorkflow.progress)).phase == "purging":
            break
        await asyncio.sleep(0.01)
    await stack.handle().signal(DeletionWorkflow.reactivate, ReactivateRequest(plan="free"))
    assert (await stack.result())["outcome"] == "purged"
    ignored = [
        e for e in await stack.lc.repository.events(stack.tenant) if "ignored" in e.operation
    ]
    assert len(ignored) == 1 and "its purge started at" in ignored[0].detail["reason"]


async def test_purge_resumes_after_a_crash_with_right_counts(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 15 notes in batches of 4: the first attempt dies after 2 batches (8 rows deleted)
    monkeypatch.setenv(FAULT_ENV, "raise:purge.batch:app.notes@2")
    await stack.delete()
    assert (await stack.result())["outcome"] == "purged"
    assert await stack.counts(stack.tenant) == ZERO
    assert await stack.counts(stack.other) == stack.app.expected()
    cert = await stack.lc.deletion.deletion_certificate(stack.tenant)
    assert cert.document["stores"]["app.notes"] == {"before": {"rows": 15}, "after": {"rows": 0}}
    history = await stack.handle().fetch_history()
    failed = [
        e.activity_task_failed_event_attributes.failure.message
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED
    ]
    retried = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    assert retried.count(2) == 1 and failed == []  # attempt 1 crashed, attempt 2 finished


async def test_remainder_fails_the_purge_loudly(stack: Stack) -> None:
    # the application logs an audit row for the tenant whenever one of its projects is
    # deleted, into a table the purge has already emptied
    engine = create_engine(f"sqlite+aiosqlite:///{stack.app.db}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE audit (id INTEGER PRIMARY KEY, tenant TEXT)"))
        await conn.execute(
            text(
                "CREATE TRIGGER log_delete AFTER DELETE ON projects BEGIN "
                "INSERT INTO audit (tenant) VALUES (old.tenant); END"
            )
        )
    await engine.dispose()
    datamap = stack.app.datamap.read_text()
    audit = '[[tables]]\ndatabase = "app"\nname = "audit"\ntenant_column = "tenant"\n\n'
    stack.app.datamap.write_text(datamap.replace("[[tables]]", audit + "[[tables]]", 1))
    await stack.delete()
    with pytest.raises(WorkflowFailureError) as err:
        await stack.result()
    assert "purge incomplete" in str(err.value.cause) and "app.audit" in str(err.value.cause)
    tenant = await stack.lc.get_tenant(stack.tenant)
    assert tenant.purged_at is None and tenant.name is not None  # no tombstone, no certificate
    assert await stack.lc.deletion.deletions.certificate(stack.tenant) is None
    events = await stack.lc.repository.events(stack.tenant)
    assert events[-1].operation == "purge-failed" and "app.audit" in events[-1].detail["error"]
    op = await stack.lc.repository.operation(f"tenant-{stack.tenant}-deletion")
    assert op is not None and op.status == "failed"


async def test_delete_rejects_wrong_state_and_disabled_reactivation(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, enable_reactivation_workflow=False)
    async with running_stack(time_env, settings) as lc:
        tenant = uid("solo")
        await new_tenant(lc, tenant)  # no data map: control-plane data and billing only
        started = await lc.deletion.delete_tenant(
            tenant, DeleteRequest(requested_by="me", retention_days=90)
        )
        assert started.can_reactivate is False and started.retention_days == 90
        await wait_state(lc, tenant, TenantState.DELETED)
        with pytest.raises(StateConflict, match="is DELETED; delete needs state ACTIVE or SUSP"):
            await lc.deletion.delete_tenant(tenant, DeleteRequest(requested_by="me"))
        with pytest.raises(StateConflict, match="ENABLE_REACTIVATION_WORKFLOW=false"):
            await lc.reactivation.reactivate_tenant(tenant, ReactivateRequest())
        # the CLI's signal is refused by the workflow too, and audited
        handle = lc.core.handle(f"tenant-{tenant}-deletion")
        await handle.signal(DeletionWorkflow.reactivate, ReactivateRequest())
        result = await skip_to_result(time_env, handle)
        assert result["outcome"] == "purged"
        cert = await lc.deletion.deletion_certificate(tenant)
        assert cert.document["stores"] == {
            "exports": {"before": {"files": 0, "bytes": 0}, "after": {"files": 0, "bytes": 0}}
        }
        assert cert.document["retention_days"] == 90
        ops = [e.operation for e in await lc.repository.events(tenant)]
        assert "reactivate-ignored" in ops


async def _app_sql(stack: Stack, *statements: str) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{stack.app.db}")
    async with engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    await engine.dispose()


def _attempts(history, activity: str) -> int:
    scheduled = {
        e.event_id
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name == activity
    }
    return max(
        (
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
            and e.activity_task_started_event_attributes.scheduled_event_id in scheduled
        ),
        default=0,
    )


async def test_unmapped_table_with_rows_fails_at_once_and_yields_no_certificate(
    stack: Stack,
) -> None:
    """``audit_log(tenant, ...)`` next to the mapped tables, not in the data map: counted
    before and after, never purged; its rows fail verification at the first attempt."""
    await _app_sql(
        stack,
        "CREATE TABLE audit_log (id INTEGER PRIMARY KEY, tenant TEXT, what TEXT)",
        f"INSERT INTO audit_log (tenant, what) VALUES ('{stack.tenant}', 'login'), "
        f"('{stack.tenant}', 'export'), ('{stack.other}', 'login')",
    )
    await stack.delete()
    with pytest.raises(WorkflowFailureError) as err:
        await stack.result()
    cause = str(err.value.cause)
    assert (
        "purge incomplete" in cause and "app.audit_log {'rows': 2} (not in the data map)" in cause
    )
    progress = await stack.handle().query(DeletionWorkflow.progress)
    assert progress.before is not None and progress.before["app.audit_log"] == {"rows": 2}
    assert _attempts(await stack.handle().fetch_history(), "verify_purge") == 1
    assert await stack.lc.deletion.deletions.certificate(stack.tenant) is None
    tenant = await stack.lc.get_tenant(stack.tenant)
    assert tenant.purged_at is None
    events = await stack.lc.repository.events(stack.tenant)
    assert events[-1].operation == "purge-failed" and "app.audit_log" in events[-1].detail["error"]


async def test_foreign_key_from_an_unmapped_table_fails_without_retries(stack: Stack) -> None:
    await _app_sql(
        stack,
        "CREATE TABLE comments (id INTEGER PRIMARY KEY, "
        "project_id INTEGER NOT NULL REFERENCES projects(id))",
        "INSERT INTO comments (project_id) SELECT id FROM projects "
        f"WHERE tenant = '{stack.tenant}'",
    )
    await stack.delete()
    with pytest.raises(WorkflowFailureError) as err:
        await stack.result()
    cause = str(err.value.cause)
    assert "purge of app.projects" in cause and "blocked by a foreign key" in cause
    assert "app.comments (foreign key project_id -> projects.id)" in cause
    assert _attempts(await stack.handle().fetch_history(), "purge_store") == 1
    assert await stack.lc.deletion.deletions.certificate(stack.tenant) is None


async def test_certificate_lists_every_store_checked_with_ignored_reasons(stack: Stack) -> None:
    await _app_sql(
        stack,
        "CREATE TABLE usage_totals (id INTEGER PRIMARY KEY, tenant TEXT, n INTEGER)",
        f"INSERT INTO usage_totals (tenant, n) VALUES ('{stack.tenant}', 3)",
    )
    with stack.app.datamap.open("a", encoding="utf-8") as f:
        f.write('\n[[ignore]]\ndatabase = "app"\nname = "usage_totals"\nreason = "counts only"\n')
    await stack.delete()
    assert (await stack.result())["outcome"] == "purged"
    cert = await stack.lc.deletion.deletion_certificate(stack.tenant)
    assert cert.document["coverage"] == [
        {"store": "app.notes", "kind": "mapped table"},
        {"store": "app.projects", "kind": "mapped table"},
        {"store": "exports", "kind": "exports"},
        {"store": "storage[0]", "kind": "storage"},
        {"store": "app.usage_totals", "kind": "ignored table", "reason": "counts only"},
    ]
    public = stack.lc.settings.certificate_key().public_key()
    assert verify(cert.model_dump(mode="json"), {key_id(public): public}).valid


async def test_purge_now_waives_the_retention_and_the_certificate_records_it(
    stack: Stack,
) -> None:
    await stack.delete()
    await stack.env.sleep(timedelta(days=2))
    tenant = await stack.lc.get_tenant(stack.tenant)
    with pytest.raises(InvalidInput, match="confirm must repeat the tenant id"):
        await stack.lc.deletion.purge_now(stack.tenant, _purge_now(stack.other))
    assert await stack.counts(stack.tenant) == stack.app.expected()

    accepted = await stack.lc.deletion.purge_now(stack.tenant, _purge_now(stack.tenant))
    assert accepted.workflow_id == f"tenant-{stack.tenant}-deletion"
    assert accepted.retention_waived.by == "dpo@example.com"
    assert accepted.purge_scheduled_at == tenant.purge_scheduled_at.isoformat()
    assert (await stack.result())["outcome"] == "purged"
    assert await stack.counts(stack.tenant) == ZERO
    assert await stack.counts(stack.other) == stack.app.expected()

    tomb = await stack.lc.get_tenant(stack.tenant)
    assert tomb.purged_at is not None and tomb.purged_at < tenant.purge_scheduled_at
    cert = (await stack.lc.deletion.deletion_certificate(stack.tenant)).model_dump(mode="json")
    waived = cert["document"]["retention_waived"]
    assert waived == accepted.retention_waived.model_dump()
    assert waived["reason"] == "written request of 2025-07-02 for immediate erasure"
    public = stack.lc.settings.certificate_key().public_key()
    assert verify(cert, {key_id(public): public}).problems == []  # the waiver is signed too
    events = await stack.lc.repository.events(stack.tenant)
    assert [e.operation for e in events][-3:] == ["retention-waived", "purge-started", "purged"]
    audit = events[-3]
    assert audit.actor == "dpo@example.com"
    assert audit.detail == {**waived, "purge_scheduled_at": accepted.purge_scheduled_at}
    with pytest.raises(StateConflict, match="was purged at"):
        await stack.lc.deletion.purge_now(stack.tenant, _purge_now(stack.tenant))


async def test_purge_now_sent_before_the_workflow_reaches_its_retention_is_kept(
    stack: Stack,
) -> None:
    """The topology test's failing input: purge now right after the tenant row turned
    DELETED, while the deletion workflow had not yet run its next task ("starting"), was
    refused with 409 "not deleted yet". Here the update comes even earlier, with the start:
    it is accepted, and the purge runs once the soft delete committed."""
    request = DeleteRequest(requested_by="dpo@example.com", reason="contract ended")
    await stack.lc.deletion.delete_tenant(stack.tenant, request)
    waiver = await stack.handle().execute_update(
        DeletionWorkflow.purge_now,
        RetentionWaiverRequest(requested_by="dpo@example.com", reason="immediate erasure"),
    )
    assert waiver.by == "dpo@example.com"
    assert (await stack.result())["outcome"] == "purged"
    assert await stack.counts(stack.tenant) == ZERO
    assert await stack.counts(stack.other) == stack.app.expected()
    events = await stack.events()
    assert events[1:] == ["deletion", "deletion", "retention-waived", "purge-started", "purged"]


async def test_purge_now_is_refused_under_legal_hold_and_the_retention_rule_stays(
    stack: Stack,
) -> None:
    await stack.delete()
    await stack.lc.deletion.set_legal_hold(stack.tenant, True, LegalHoldRequest(reason="court"))
    with pytest.raises(StateConflict, match="is under legal hold"):
        await stack.lc.deletion.purge_now(stack.tenant, _purge_now(stack.tenant))
    # the workflow's validator refuses too, for a caller that skips the service's checks
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await stack.handle().execute_update(
            DeletionWorkflow.purge_now,
            RetentionWaiverRequest(requested_by="x", reason="y"),
        )
    assert "is under legal hold" in str(failed.value.cause)
    await stack.lc.deletion.set_legal_hold(stack.tenant, False)
    # without a waiver nothing is purged before purge_scheduled_at
    await stack.env.sleep(timedelta(days=20))
    assert await stack.counts(stack.tenant) == stack.app.expected()
    events = await stack.events()
    assert "retention-waived" not in events and "purge-started" not in events
    # a reactivation and a waiver exclude each other
    await stack.lc.reactivation.reactivate_tenant(stack.tenant, ReactivateRequest())
    with pytest.raises(StateConflict, match="being reactivated|is ACTIVE|REACTIVATING"):
        await stack.lc.deletion.purge_now(stack.tenant, _purge_now(stack.tenant))
    assert (await stack.result())["outcome"] == "reactivated"
    assert await stack.counts(stack.tenant) == stack.app.expected()


def _purge_now(confirm: str) -> PurgeNowRequest:
    return PurgeNowRequest(
        requested_by="dpo@example.com",
        reason="written request of 2025-07-02 for immediate erasure",
        confirm=confirm,
    )


async def test_purge_clears_the_cache_store_and_the_certificate_counts_it(
    stack: Stack, redis_url: str
) -> None:
    redis = Redis.from_url(redis_url)
    for tenant in (stack.tenant, stack.other):
        for i in range(7):
            await redis.set(f"app:{tenant}:page:{i}", "cached", ex=3600)
        await redis.hset(f"app:{tenant}:profile", mapping={"name": tenant})
    with stack.app.datamap.open("a", encoding="utf-8") as f:
        f.write(f'\n[[cache]]\nurl = "{redis_url}"\npatterns = ["app:{{tenant_key}}:*"]\n')
    await stack.delete()
    assert (await stack.result())["outcome"] == "purged"
    assert await redis.keys(f"app:{stack.tenant}:*") == []
    assert len(await redis.keys(f"app:{stack.other}:*")) == 8  # other tenants untouched
    await redis.aclose()
    document = (await stack.lc.deletion.deletion_certificate(stack.tenant)).document
    assert document["stores"]["cache[0]"] == {"before": {"keys": 8}, "after": {"keys": 0}}
    assert {"store": "cache[0]", "kind": "cache"} in document["coverage"]
    assert document["cache"].startswith("counted per store: cache[i]")


async def test_purge_levels_and_the_order_of_runs_started_before_them(stack: Stack) -> None:
    """Runs started before the ``parallel-purge`` patch still ask for one flat order: the
    levels one after the other, tables children first, then storage."""
    purge = PurgeActivities(stack.lc.settings)
    target = PurgeTarget(tenant_id=stack.tenant, data_key=stack.tenant)
    levels = await purge.list_purge_levels(target)
    assert levels == [["app.notes"], ["app.projects"], ["storage[0]"]]
    assert await purge.list_purge_stores(target) == ["app.notes", "app.projects", "storage[0]"]
