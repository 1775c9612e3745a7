"""Bulk plan migrations (issue 19, target 5): the fan-out over child upgrades and downgrades,
failures listed with their causes, pause/resume/cancel, continue-as-new, the billing rate
limit shared by two workers, and the back-off on Stripe's 429."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import stripe
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from activities.billing import billing_error, make_stripe_client
from lifecycle.client.base import task_queue_pollers
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.errors import InvalidInput, StateConflict
from lifecycle.domain.plan_migrations import (
    MigrationFilter,
    PlanMigrationInput,
    PlanMigrationProgress,
    PlanMigrationRequest,
    migration_workflow_id,
)
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TransitionInput
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.rate_limits import RateLimiter
from lifecycle.persistence.tenants import TenantRepository
from tests.support.crash import WorkerProcess, worker_process
from tests.support.fixtures import make_settings, running_stack, uid
from tests.support.plan_fixtures import billing_settings, finish, seeded
from tests.support.stripe_server import StripeServer
from worker import build_worker
from workflows.plan_migration import PlanMigrationWorkflow

ITEMS = "/v1/subscription_items/"


def request(**fields: Any) -> PlanMigrationRequest:
    return PlanMigrationRequest.model_validate(fields)


async def suspend(repository: TenantRepository, tenant_id: str) -> None:
    await repository.transition(
        TransitionInput(
            tenant_id=tenant_id,
            from_states=[TenantState.ACTIVE],
            to_state=TenantState.SUSPENDED,
            operation="suspend",
            workflow_id="test-suspend",
            actor="test",
        )
    )


async def test_migration_moves_every_tenant_and_lists_the_failures_with_causes(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        prefix = uid("bulk")
        ids = await seeded(lc.repository, stripe_server, "starter", 30, prefix)
        others = await seeded(lc.repository, stripe_server, "starter", 2, uid("other"))
        for tenant_id in ids[:2]:
            await suspend(lc.repository, tenant_id)
        stripe_server.fail("POST", ITEMS, "card_declined", times=3)

        started = await lc.plan_migrations.start(
            request(
                from_plan="starter",
                to_plan="professional",
                filter={"tenant_id_prefix": prefix},
                concurrency=7,
            ),
            actor="ops-admin",
        )
        assert started.kind == "upgrade" and started.price_id == "price_professional"
        final = PlanMigrationProgress.model_validate(
            await finish(time_env, lc, started.workflow_id)
        )

        assert (final.status, final.total, final.done, final.failed) == ("completed", 30, 25, 5)
        assert (final.in_flight, final.remaining) == (0, 0)
        progress = await lc.plan_migrations.progress(started.migration_id)
        causes = sorted(f.cause for f in progress.failures)
        assert causes == ["CardDeclined"] * 3 + ["StateConflict"] * 2
        assert {f.tenant_id for f in progress.failures if f.cause == "StateConflict"} == set(
            ids[:2]
        )
        assert all(
            "SUSPENDED" in f.message for f in progress.failures if f.cause == "StateConflict"
        )
        failed = {f.tenant_id for f in progress.failures}
        for tenant_id in ids:
            tenant = await lc.get_tenant(tenant_id)
            expected = "starter" if tenant_id in failed else "professional"
            assert tenant.plan == expected, tenant_id
            if tenant_id not in ids[:2]:
                assert tenant.state is TenantState.ACTIVE
                price = stripe_server.item_price(tenant.billing_subscription_id or "")
                assert price == f"price_{expected}"
        # declined cards were tried once each (the children's own saga), not retried by the
        # migration; the filter kept the other tenants out
        assert len([e for e in stripe_server.mutations() if e.path.startswith(ITEMS)]) == 28
        for tenant_id in others:
            assert (await lc.get_tenant(tenant_id)).plan == "starter"
        # each moved tenant's upgrade ran as a child under its usual id, audited as the admin
        events = await lc.repository.events(ids[5])
        assert any(
            e.workflow_id == f"tenant-{ids[5]}-upgrade" and e.actor == "ops-admin" for e in events
        )


async def test_downgrade_migration_lists_usage_over_the_target_without_starting_it(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        prefix = uid("down")
        ids = await seeded(lc.repository, stripe_server, "professional", 4, prefix)
        await lc.plan_changes.record_usage(ids[1], {"users": 10_000})
        started = await lc.plan_migrations.start(
            request(from_plan="professional", to_plan="starter", filter={"tenant_ids": ids})
        )
        assert started.kind == "downgrade"
        await finish(time_env, lc, started.workflow_id)
        progress = await lc.plan_migrations.progress(started.migration_id)
        assert (progress.done, progress.failed) == (3, 1)
        [failure] = progress.failures
        assert failure.tenant_id == ids[1] and failure.cause == "UsageExceedsLimits"
        assert "users" in failure.message
        # refused before any child: no downgrade workflow for that tenant
        assert await lc.operation(f"tenant-{ids[1]}-downgrade") is None
        assert (await lc.get_tenant(ids[0])).plan == "starter"


async def test_bad_requests_are_refused_before_anything_starts(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        with pytest.raises(InvalidInput, match="unknown plan 'gold'"):
            await lc.plan_migrations.start(request(from_plan="gold", to_plan="starter"))
        with pytest.raises(InvalidInput, match=r"rule \[changes.enterprise\] free is not_allowed"):
            await lc.plan_migrations.start(request(from_plan="enterprise", to_plan="free"))
        with pytest.raises(InvalidInput, match="same plan"):
            await lc.plan_migrations.start(request(from_plan="starter", to_plan="starter"))
        with pytest.raises(InvalidInput, match="period_end"):
            await lc.plan_migrations.start(
                request(from_plan="starter", to_plan="enterprise", effective="period_end")
            )
        with pytest.raises(ValueError, match="exactly one of to_plan and to_price_id"):
            request(from_plan="starter", to_plan="enterprise", to_price_id="price_x")


async def test_pause_resume_and_progress_then_cancel(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Limited mode (no billing): pause holds the fan-out, resume finishes it; a cancelled
    migration ends with the rest never started."""
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        prefix = uid("pause")
        ids = await seeded(lc.repository, None, "free", 12, prefix)
        started = await lc.plan_migrations.start(
            request(
                from_plan="free",
                to_plan="starter",
                filter=MigrationFilter(tenant_id_prefix=prefix).model_dump(),
                concurrency=2,
            )
        )
        paused = await lc.plan_migrations.control(started.migration_id, "pause", "ops")
        assert paused.status == "paused"
        for _ in range(50):  # the children in flight finish, no new one starts
            progress = await lc.plan_migrations.progress(started.migration_id)
            if progress.in_flight == 0 and progress.total is not None:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        held = await lc.plan_migrations.progress(started.migration_id)
        assert held.status == "paused" and held.in_flight == 0
        assert held.done < 12 and held.remaining == 12 - held.done
        assert held.done == sum([(await lc.get_tenant(t)).plan == "starter" for t in ids])

        resumed = await lc.plan_migrations.control(started.migration_id, "resume", "ops")
        assert resumed.status == "running"
        final = PlanMigrationProgress.model_validate(
            await finish(time_env, lc, started.workflow_id)
        )
        assert (final.status, final.done, final.failed, final.remaining) == ("completed", 12, 0, 0)
        with pytest.raises(StateConflict, match="has ended"):
            await lc.plan_migrations.control(started.migration_id, "pause", "ops")

        more = await seeded(lc.repository, None, "free", 12, uid("cancel"))
        started = await lc.plan_migrations.start(
            request(from_plan="free", to_plan="starter", filter={"tenant_ids": more})
        )
        await lc.plan_migrations.control(started.migration_id, "pause", "ops")
        cancelling = await lc.plan_migrations.control(started.migration_id, "cancel", "ops")
        assert cancelling.cancelled_by == "ops"
        final = PlanMigrationProgress.model_validate(
            await finish(time_env, lc, started.workflow_id)
        )
        assert final.status == "cancelled" and final.done < 12
        moved = sum([(await lc.get_tenant(t)).plan == "starter" for t in more])
        assert moved == final.done


async def test_a_long_migration_continues_as_new_and_keeps_its_counts(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        ids = await seeded(lc.repository, None, "free", 10, uid("can"))
        catalog = lc.settings.plans
        data = PlanMigrationInput(
            migration_id="0123456789abcdef",
            kind="upgrade",
            from_plan="free",
            to_plan="starter",
            limits=catalog.get("starter").limits.as_dict(),
            price_id="price_starter",
            previous_price_id="price_free",
            filter=MigrationFilter(tenant_ids=ids),
            continue_as_new_after=4,
        )
        wid = migration_workflow_id(data.migration_id)
        first = await lc.temporal.start_workflow(
            PlanMigrationWorkflow.run, data, id=wid, task_queue=lc.settings.temporal_task_queue
        )
        final = await finish(time_env, lc, wid)
        assert (final["total"], final["done"], final["failed"]) == (10, 10, 0)
        runs, run_id = 0, first.first_execution_run_id
        while run_id:  # follow the chain of runs
            runs += 1
            handle = lc.temporal.get_workflow_handle(wid, run_id=run_id)
            last = (await handle.fetch_history()).events[-1]
            attributes = last.workflow_execution_continued_as_new_event_attributes
            run_id = attributes.new_execution_run_id or None
        assert runs == 3  # 4 + 4 + 2 children
        assert all([(await lc.get_tenant(t)).plan == "starter" for t in ids])


async def test_429_is_retried_after_retry_after(stripe_server: StripeServer) -> None:
    """The Stripe-compatible server's rate limit answers 429 with Retry-After; the billing
    error asks Temporal to retry after it (not the retry policy's 1 s, 2 s, ... backoff)."""
    stripe_server.rate_limit = 1
    client = make_stripe_client(stripe_server.api_key, stripe_server.url)
    assert client is not None
    sub = stripe_server.subscribe("price_starter")
    customers = client.v1.customers
    await customers.create_async(params={"name": "a"})
    with pytest.raises(stripe.RateLimitError) as caught:
        await customers.create_async(params={"name": "b"})
    assert stripe_server.rate_limited == 1
    assert stripe_server.journal[-1].status == 429
    error = billing_error(caught.value)
    assert error.type == "BillingRateLimited" and not error.non_retryable
    assert error.next_retry_delay is not None
    assert 1.0 <= error.next_retry_delay.total_seconds() <= 1.5
    await asyncio.sleep(1.0)
    await customers.create_async(params={"name": "b"})  # after Retry-After: accepted
    await client.v1.subscriptions.retrieve_async(sub)  # reads are not limited
    assert stripe_server.rate_limited == 1


async def test_two_workers_share_the_billing_rate_limit(
    dev_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer, pg_url: str
) -> None:
    """Two worker processes on one task queue, BILLING_RATE_LIMIT=4 kept in PostgreSQL: the
    billing writes of a 20-tenant migration go out at most 4 a second, evenly spaced, so
    that the Stripe-compatible server limited to 4 a second never answers 429."""
    settings = billing_settings(
        tmp_path,
        stripe_server,
        database_url=pg_url,
        billing_rate_limit=4,
        temporal_address=dev_env.client.service_client.config.target_host,
    )
    stripe_server.rate_limit = 4
    async with running_stack(dev_env, settings) as lc:
        async with worker_process(settings, tmp_path / "worker.log"):
            for _ in range(100):
                try:
                    polling = await task_queue_pollers(
                        lc.temporal, settings.temporal_namespace, settings.temporal_task_queue
                    )
                except RPCError:  # a loaded dev server may cancel a describe: ask again
                    polling = []
                if len(polling) >= 2:
                    break
                await asyncio.sleep(0.3)
            ids = await seeded(lc.repository, stripe_server, "starter", 20, uid("rate"))
            started = await lc.plan_migrations.start(
                request(from_plan="starter", to_plan="professional", filter={"tenant_ids": ids})
            )
            final = await asyncio.wait_for(lc.core.handle(started.workflow_id).result(), 120)
            assert "billing-writes" not in (tmp_path / "worker.log").read_text()
    assert (final["done"], final["failed"]) == (20, 0)
    writes = sorted(e.at_ns for e in stripe_server.mutations() if e.path.startswith(ITEMS))
    assert len(writes) == 20
    # evenly spaced by the shared limiter: 19 intervals of 0.25 s. Slack for the two
    # processes' event loops: under a loaded CI the first write went out 0.48 s late (its
    # worker's first connection to the server) and the span measured 4.27 s (2026-12-03)
    assert (writes[-1] - writes[0]) / 1e9 >= 19 / 4 - 1.0
    # 5 writes take 4 slots (1 s); one write arriving late bunches it with the next ones on
    # arrival (a loaded CI saw 5 writes in 0.667 s, 2026-12-03): allow 0.5 s of such jitter.
    # Without the limiter the 20 writes arrive within a few tens of milliseconds.
    for first, later in zip(writes, writes[4:], strict=False):
        assert (later - first) / 1e9 >= 1 - 0.5
    assert stripe_server.rate_limited == 0
    # both workers made billing writes (the worker identity that started each change_price)
    identities = set()
    async with running_stack(dev_env, settings) as lc:
        for tenant_id in ids:
            history = await lc.core.handle(f"tenant-{tenant_id}-upgrade").fetch_history()
            scheduled = {
                e.event_id
                for e in history.events
                if e.activity_task_scheduled_event_attributes.activity_type.name == "change_price"
            }
            identities |= {
                e.activity_task_started_event_attributes.identity
                for e in history.events
                if e.activity_task_started_event_attributes.scheduled_event_id in scheduled
            }
    assert len(identities) == 2


async def test_rate_limiter_spaces_reservations(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reservations are 1/rate apart whoever makes them (here two limiters, one database).
    The limiter's clock is held still, so the waits are exact whatever the machine's load
    (on the wall clock each wait shrinks by the time the reservation itself took)."""
    from lifecycle.persistence import rate_limits

    monkeypatch.setattr(rate_limits, "time", SimpleNamespace(time=lambda: 1_000.0))
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'rl.db'}")
    await migrate(engine)
    a, b = (RateLimiter(Sessions(engine), "test", 10) for _ in range(2))
    waits = [await limiter.reserve() for limiter in (a, b, a, b, a)]
    await engine.dispose()
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=1e-9)


async def test_a_migration_resumes_after_its_worker_is_killed(
    dev_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    """SIGKILL the only worker mid-migration; a new worker finishes it from the history:
    every tenant moved, each billed exactly once."""
    settings = billing_settings(
        tmp_path, stripe_server, temporal_address=dev_env.client.service_client.config.target_host
    )
    engine = create_engine(settings.db_url)
    await migrate(engine)
    repository = TenantRepository(Sessions(engine))
    lc = LifecycleClient(settings, dev_env.client, repository)
    ids = await seeded(repository, stripe_server, "starter", 8, uid("crash"))
    stripe_server.fail("POST", ITEMS, "slow", times=100, seconds=0.5)
    doomed = WorkerProcess(settings, tmp_path / "doomed.log")
    try:
        started = await lc.plan_migrations.start(
            request(
                from_plan="starter",
                to_plan="professional",
                filter={"tenant_ids": ids},
                concurrency=2,
            )
        )
        for _ in range(600):
            if len(stripe_server.price_changes) >= 2:
                break
            await asyncio.sleep(0.05)
        doomed.proc.kill()
        doomed.proc.wait()
    finally:
        doomed.stop()
    assert len(stripe_server.price_changes) < 8
    async with build_worker(dev_env.client, settings, repository):
        final = await asyncio.wait_for(lc.core.handle(started.workflow_id).result(), 180)
    await engine.dispose()
    assert (final["done"], final["failed"]) == (8, 0)
    assert [(await lc.get_tenant(t)).plan for t in ids] == ["professional"] * 8
    moved = sorted(c["subscription"] for c in stripe_server.price_changes)
    assert len(moved) == len(set(moved)) == 8  # one change per subscription


async def test_period_end_downgrades_count_once_scheduled(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A downgrade at period end is done for the migration once scheduled: the tenant keeps
    its plan with the pending change, and its downgrade goes on waiting after the migration
    ended (ParentClosePolicy.ABANDON)."""
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        ids = await seeded(lc.repository, None, "professional", 3, uid("later"))
        started = await lc.plan_migrations.start(
            request(
                from_plan="professional",
                to_plan="starter",
                effective="period_end",
                filter={"tenant_ids": ids},
            )
        )
        handle = lc.core.handle(started.workflow_id)
        final = PlanMigrationProgress.model_validate(await handle.result())
        assert (final.status, final.done, final.failed) == ("completed", 3, 0)
        for tenant_id in ids:
            downgrade = lc.core.handle(f"tenant-{tenant_id}-downgrade")
            assert (await downgrade.describe()).status == WorkflowExecutionStatus.RUNNING
            for _ in range(100):
                tenant = await lc.get_tenant(tenant_id)
                if tenant.pending_plan_change:
                    break
                await asyncio.sleep(0.05)
            assert tenant.plan == "professional"
            assert tenant.pending_plan_change and tenant.pending_plan_change["to_plan"] == "starter"


async def test_a_migration_over_the_servers_limit_backs_off_and_finishes(
    dev_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    """No BILLING_RATE_LIMIT, a Stripe-compatible server limited to 1 write/s: writes over
    it get 429 and are retried after Retry-After (same idempotency key) until every tenant
    moved, none listed as failed. On the dev server: the retry delays are real time, as the
    server's limit is (the time-skipping server would skip them and burn the 20 attempts)."""
    async with running_stack(dev_env, billing_settings(tmp_path, stripe_server)) as lc:
        ids = await seeded(lc.repository, stripe_server, "starter", 6, uid("burst"))
        stripe_server.rate_limit = 1
        started = await lc.plan_migrations.start(
            request(from_plan="starter", to_plan="professional", filter={"tenant_ids": ids})
        )
        handle = lc.core.handle(started.workflow_id)
        final = PlanMigrationProgress.model_validate(await asyncio.wait_for(handle.result(), 120))
        progress = await lc.plan_migrations.progress(started.migration_id)
        assert (final.done, final.failed) == (6, 0), progress.failures
        writes = [e for e in stripe_server.mutations() if e.path.startswith(ITEMS)]
        limited = [e for e in writes if e.status == 429]
        assert stripe_server.rate_limited == len(limited) > 0
        accepted = {e.idempotency_key for e in writes if e.status == 200}
        assert len(accepted) == 6 and {e.idempotency_key for e in limited} <= accepted
        moved = [c["subscription"] for c in stripe_server.price_changes]
        assert len(moved) == len(set(moved)) == 6  # each billed once
        # a retry came no sooner than the Retry-After (1 s) after its 429
        for entry in limited:
            retried = [e for e in writes if e.idempotency_key == entry.idempotency_key]
            after = [e for e in retried if e.at_ns > entry.at_ns]
            assert after and (after[0].at_ns - entry.at_ns) / 1e9 >= 1.0
