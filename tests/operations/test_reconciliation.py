"""Billing reconciliation (issue 12): each kind of drift is made by writing to the
Stripe-compatible server directly, then found (audit row, report, gauge, ``GET
/reconciliation``) and, where unambiguous, repaired with ``fix``; a mixed workload ends with a
report of 0 drift. The Schedule is created idempotently."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.client import ScheduleActionStartWorkflow
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from lifecycle.api.metrics import render_metrics
from lifecycle.client.reconciliation import ensure_schedule
from lifecycle.domain.deletion import DeleteRequest
from lifecycle.domain.reconciliation import RECONCILIATION_SCHEDULE_ID
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from tests.operations.test_downgrade import wait_for_step
from tests.support.fixtures import make_settings, running_stack
from tests.support.plan_fixtures import billing_settings, finish, onboarded, sync_clock
from tests.support.stripe_server import StripeServer
from tests.support.tenant_data import wait_state


def kinds(report) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """tenant id -> kind of each drift of ``report``."""
    return {d.tenant_id: d.kind.value for d in report.drifts}


async def test_each_kind_of_drift_is_found_and_the_unambiguous_ones_fixed(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        price = await onboarded(lc, "starter", prefix="price")
        gone = await onboarded(lc, "professional", prefix="gone")
        unpaid = await onboarded(lc, "professional", prefix="unpaid")
        scheduled = await onboarded(lc, "professional", prefix="sched")
        deleted = await onboarded(lc, "starter", prefix="del")
        fine = await onboarded(lc, "enterprise", prefix="fine")
        await lc.deletion.delete_tenant(deleted.tenant_id, DeleteRequest(requested_by="dpo@x.io"))
        await wait_state(lc, deleted.tenant_id, TenantState.DELETED)
        subs = stripe_server.subscriptions
        # drift made in "the Stripe dashboard"
        subs[price.billing_subscription_id]["items"]["data"][0]["price"] = stripe_server.prices[
            "price_enterprise"
        ]
        subs[gone.billing_subscription_id]["status"] = "canceled"
        subs[unpaid.billing_subscription_id]["status"] = "unpaid"
        stripe_server._create_schedule({"from_subscription": scheduled.billing_subscription_id})
        assert subs[deleted.billing_subscription_id]["status"] == "canceled"
        subs[deleted.billing_subscription_id]["status"] = "active"

        report = await lc.reconciliation.reconcile(actor="ops")

        assert kinds(report) == {
            price.tenant_id: "price-differs",
            gone.tenant_id: "no-subscription",
            unpaid.tenant_id: "subscription-not-live",
            scheduled.tenant_id: "schedule-differs",
            deleted.tenant_id: "deleted-but-billed",
        }
        assert fine.tenant_id not in kinds(report) and report.tenants_checked >= 6
        assert all(d.fix is None for d in report.drifts)  # reported only without --fix
        drift = next(d for d in report.drifts if d.kind == "price-differs")
        assert drift.control_plane.price_id == "price_starter"
        assert drift.stripe is not None and drift.stripe.price_id == "price_enterprise"
        (event,) = [
            e for e in await lc.repository.events(price.tenant_id) if e.operation == "billing-drift"
        ]
        assert event.actor == "ops" and event.detail["stripe"]["price_id"] == "price_enterprise"
        assert event.detail["control_plane"]["plan"] == "starter"
        assert (await lc.reconciliation.latest()).workflow_id == report.workflow_id
        metrics = (await render_metrics(lc.repository)).decode()
        assert 'lifecycle_billing_drift{kind="price-differs"} 1.0' in metrics
        assert 'lifecycle_billing_drift{kind="no-subscription"} 1.0' in metrics

        fixed = await lc.reconciliation.reconcile(fix=True, actor="ops")

        assert {d.tenant_id: d.fix is not None for d in fixed.drifts} == {
            price.tenant_id: True,
            gone.tenant_id: True,
            deleted.tenant_id: True,
            unpaid.tenant_id: False,
            scheduled.tenant_id: False,
        }
        assert stripe_server.item_price(price.billing_subscription_id) == "price_starter"
        assert subs[deleted.billing_subscription_id]["status"] == "canceled"
        renewed = await lc.get_tenant(gone.tenant_id)
        assert renewed.billing_subscription_id not in (None, gone.billing_subscription_id)
        assert subs[renewed.billing_subscription_id]["status"] == "active"
        assert stripe_server.item_price(renewed.billing_subscription_id) == "price_professional"
        fixes = [e for e in stripe_server.mutations() if ":fix:" in (e.idempotency_key or "")]
        assert len(fixes) == 3 and all(
            (e.idempotency_key or "").startswith(fixed.workflow_id) for e in fixes
        )

        after = await lc.reconciliation.reconcile(actor="ops")
        assert kinds(after) == {
            unpaid.tenant_id: "subscription-not-live",
            scheduled.tenant_id: "schedule-differs",
        }


async def test_a_mixed_workload_ends_with_no_drift(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    stripe_server.follow(time_env.get_current_time)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        a = await onboarded(lc, "starter", {"users": 3})
        b = await onboarded(lc, "enterprise", {"users": 3})
        c = await onboarded(lc, "professional", {"users": 3})
        d = await onboarded(lc, "professional", {"users": 3})
        e = await onboarded(lc, "free")
        await finish(
            time_env,
            lc,
            (await lc.plan_changes.upgrade_tenant(a.tenant_id, "professional")).workflow_id,
        )
        pending = await lc.plan_changes.downgrade_tenant(b.tenant_id, "starter")
        await wait_for_step(lc, pending.workflow_id, "waiting-for-period-end")
        await finish(
            time_env,
            lc,
            (
                await lc.suspension.suspend_tenant(c.tenant_id, SuspendRequest(reason="x"))
            ).workflow_id,
        )
        await lc.deletion.delete_tenant(d.tenant_id, DeleteRequest(requested_by="dpo@x.io"))
        await wait_state(lc, d.tenant_id, TenantState.DELETED)
        await finish(
            time_env, lc, (await lc.plan_changes.upgrade_tenant(e.tenant_id, "starter")).workflow_id
        )

        report = await lc.reconciliation.reconcile()

        assert report.drifts == [] and report.tenants_checked == 5
        assert all(n == 0 for n in report.counts.values())
        metrics = (await render_metrics(lc.repository)).decode()
        assert 'lifecycle_billing_drift{kind="schedule-differs"} 0.0' in metrics


async def test_the_schedule_is_created_once(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    """On the dev server (the time-skipping one has no Schedules)."""
    settings = make_settings(tmp_path, reconcile_interval=timedelta(minutes=30))
    async with running_stack(dev_env, settings) as lc:
        handle = lc.temporal.get_schedule_handle(RECONCILIATION_SCHEDULE_ID)
        try:  # a worker started by another test (`python -m worker`) may have made it
            await handle.delete()
        except RPCError:
            pass
        try:
            assert await ensure_schedule(lc.temporal, settings) is True
            assert await ensure_schedule(lc.temporal, settings) is False
            described = await handle.describe()
            assert described.schedule.spec.intervals[0].every == timedelta(minutes=30)
            action = described.schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.workflow == "ReconciliationWorkflow"
            assert action.task_queue == settings.temporal_task_queue
        finally:
            await handle.delete()
