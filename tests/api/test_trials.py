"""Trials over the API, in the time-skipping server with the Stripe-compatible server:
``trial_days`` becomes the subscription's ``trial_end``, the tenant shows ``trial_ends_at``,
``trial-ending`` is audited TRIAL_ENDING_NOTICE_DAYS before the end, and at the end the
plan's ``trial_end_behavior`` applies unless a payment method is on file."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.states import TenantState
from tests.api.test_dunning import plans_with_ladder
from tests.support.api import assert_problem
from tests.support.fixtures import running_stack, serve_api, uid
from tests.support.plan_fixtures import billing_settings, stripe_server, sync_clock
from tests.support.stripe_server import StripeServer
from tests.support.tenant_data import skip_to_result

__all__ = ["stripe_server"]


async def start_trial(
    http: httpx.AsyncClient, lc: LifecycleClient, plan: str = "starter", days: int = 14
) -> str:
    """Onboard a new tenant on ``plan`` with a trial of ``days`` through the API; its id."""
    tid = uid("trial")
    body = {"tenant_id": tid, "name": tid, "email": f"ops@{tid}.io", "plan": plan}
    r = await http.post("/tenants", json={**body, "trial_days": days})
    assert r.status_code == 202, r.text
    await lc.core.handle(r.json()["workflow_id"]).result()
    return tid


async def events(lc: LifecycleClient, tid: str, operation: str) -> list[dict]:  # type: ignore[type-arg]
    return [e.detail for e in await lc.repository.events(tid) if e.operation == operation]


async def test_trial_ends_without_a_payment_method_downgrades(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with (
        running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc,
        serve_api(lc) as http,
    ):
        now = await sync_clock(stripe_server, time_env)
        stripe_server.follow(time_env.get_current_time)
        tid = await start_trial(http, lc)
        shown = (await http.get(f"/tenants/{tid}")).json()
        ends = datetime.fromisoformat(shown["trial_ends_at"])
        assert timedelta(days=14) <= ends - now < timedelta(days=14, minutes=5)
        (created,) = [e for e in stripe_server.mutations() if e.path == "/v1/subscriptions"]
        assert created.params["trial_end"] == str(int(ends.timestamp()))
        sub = shown["billing_subscription_id"]
        assert stripe_server.subscriptions[sub]["status"] == "trialing"

        await time_env.sleep(timedelta(days=11, hours=1))  # the notice: 3 days before the end
        (notice,) = await events(lc, tid, "trial-ending")
        assert notice["days_left"] == 2 and notice["plan"] == "starter"  # 2 full days and hours
        assert (await lc.get_tenant(tid)).plan == "starter"

        result = await skip_to_result(time_env, lc.core.handle(f"tenant-{tid}-trial"))
        assert result["outcome"] == "downgraded to free"
        t = await lc.get_tenant(tid)
        assert t.state is TenantState.ACTIVE and t.plan == "free"
        assert t.entitlements == lc.settings.plans.get("free").limits.as_dict()
        assert ("DELETE", f"/v1/subscriptions/{sub}") in [
            (e.method, e.path) for e in stripe_server.mutations()
        ]
        assert (await events(lc, tid, "trial-ended"))[0]["payment_method"] is False


async def test_trial_with_a_payment_method_goes_on_and_free_plans_have_none(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with (
        running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc,
        serve_api(lc) as http,
    ):
        await sync_clock(stripe_server, time_env)
        stripe_server.follow(time_env.get_current_time)
        tid = await start_trial(http, lc, "professional", days=7)
        t = await lc.get_tenant(tid)
        stripe_server.add_payment_method(str(t.billing_customer_id))
        result = await skip_to_result(time_env, lc.core.handle(f"tenant-{tid}-trial"))
        assert result["outcome"] == "paid: payment method on file"
        after = await lc.get_tenant(tid)
        assert after.plan == "professional" and after.state is TenantState.ACTIVE
        sub = str(after.billing_subscription_id)
        assert stripe_server.subscriptions[sub]["status"] == "active"  # the trial is over

        body = {"tenant_id": uid("free"), "name": "F", "email": "f@f.io", "plan": "free"}
        r = await http.post("/tenants", json={**body, "trial_days": 7})
        assert_problem(r, 422, "trial_days: plan 'free' costs nothing")
        r = await http.post("/tenants", json={**body, "plan": "starter", "trial_days": 0})
        assert_problem(r, 422, "trial_days")


async def test_trial_end_behaviors_suspend_and_dunning(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    block = 'trial_end_behavior = "dunning"\ndunning = [{ day = 2, kind = "suspend" }]'
    path = plans_with_ladder(tmp_path, block)
    text = path.read_text().replace(
        'name = "professional"\n', 'name = "professional"\ntrial_end_behavior = "suspend"\n'
    )
    path.write_text(text)
    settings = billing_settings(tmp_path, stripe_server, plans_path=path)
    async with running_stack(time_env, settings) as lc, serve_api(lc) as http:
        await sync_clock(stripe_server, time_env)
        stripe_server.follow(time_env.get_current_time)
        pro = await start_trial(http, lc, "professional", days=5)
        result = await skip_to_result(time_env, lc.core.handle(f"tenant-{pro}-trial"))
        assert result["outcome"] == "suspended"
        t = await lc.get_tenant(pro)
        assert t.state is TenantState.SUSPENDED and t.suspension and t.suspension.kind == "trial"

        starter = await start_trial(http, lc, "starter", days=5)
        await time_env.sleep(timedelta(days=6))  # the trial ended a day ago: dunning runs
        t = await lc.get_tenant(starter)
        assert t.state is TenantState.ACTIVE and t.dunning and t.dunning.next_step == "suspend"
        await time_env.sleep(timedelta(days=1, hours=1))
        assert (await lc.get_tenant(starter)).state is TenantState.SUSPENDED
        dunning = lc.core.handle(f"tenant-{starter}-payment-failure")
        await dunning.signal("invoice_paid", {"subscription_settled": True})
        result = await skip_to_result(time_env, lc.core.handle(f"tenant-{starter}-trial"))
        assert result["outcome"] == "dunning: recovered"
        assert (await lc.get_tenant(starter)).state is TenantState.ACTIVE
