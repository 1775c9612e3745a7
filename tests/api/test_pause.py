"""Pause and resume over the API, in the time-skipping server with the Stripe-compatible
server: the durable timer resumes at ``resume_at``, ``POST .../resume`` resumes early, and
the journal shows ``pause_collection`` set and lifted."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.states import TenantState
from tests.support.api import assert_problem
from tests.support.fixtures import running_stack, serve_api
from tests.support.plan_fixtures import billing_settings, onboarded, stripe_server, sync_clock
from tests.support.stripe_server import StripeServer
from tests.support.tenant_data import skip_to_result

__all__ = ["stripe_server"]


def pauses(server: StripeServer, sub: str) -> list[object]:
    """The ``pause_collection`` parameter of each update of ``sub``, in order."""
    return [
        e.params["pause_collection"]
        for e in server.journal
        if e.method == "POST" and e.path == f"/v1/subscriptions/{sub}"
    ]


async def test_pause_resumes_at_its_date_with_billing(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    settings = billing_settings(tmp_path, stripe_server, pause_collection_behavior="keep_as_draft")
    async with running_stack(time_env, settings) as lc, serve_api(lc) as http:
        now = await sync_clock(stripe_server, time_env)
        stripe_server.follow(time_env.get_current_time)
        tenant = await onboarded(lc, "professional", prefix="pause")
        tid, sub = tenant.tenant_id, str(tenant.billing_subscription_id)
        resume_at = now + timedelta(days=10)
        r = await http.post(
            f"/tenants/{tid}/pause", json={"reason": "holiday", "resume_at": resume_at.isoformat()}
        )
        assert r.status_code == 202, r.text
        wid = r.json()["workflow_id"]
        assert wid == f"tenant-{tid}-pause"
        await time_env.sleep(timedelta(days=1))
        shown = (await http.get(f"/tenants/{tid}")).json()
        assert shown["state"] == "SUSPENDED" and set(shown["entitlements"].values()) == {0}
        assert shown["suspension"]["kind"] == "paused"
        assert shown["suspension"]["reason"] == "holiday"
        assert shown["suspension"]["resume_at"].startswith(resume_at.date().isoformat())
        assert pauses(stripe_server, sub) == [
            {"behavior": "keep_as_draft", "resumes_at": str(int(resume_at.timestamp()))}
        ]
        again = await http.post(f"/tenants/{tid}/pause", json={"reason": "twice"})
        assert_problem(again, 409, "is SUSPENDED; pause needs state ACTIVE")

        result = await skip_to_result(time_env, lc.core.handle(wid))
        assert result["outcome"] == "resumed on schedule"
        t = await lc.get_tenant(tid)
        plan = lc.settings.plans.get("professional").limits.as_dict()
        assert t.state is TenantState.ACTIVE and t.entitlements == plan and t.suspension is None
        assert t.billing_subscription_id == sub  # kept
        # lifted by Stripe at resumes_at, so nothing left to resume; no second subscription
        assert stripe_server.subscriptions[sub]["pause_collection"] is None
        assert sum(e.path == "/v1/subscriptions" for e in stripe_server.mutations()) == 1
        states = [e.to_state for e in await lc.repository.events(tid) if e.to_state]
        assert states[-3:] == ["SUSPENDED", "REACTIVATING", "ACTIVE"]


async def test_resume_early_lifts_the_pause_at_once(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with (
        running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc,
        serve_api(lc) as http,
    ):
        await sync_clock(stripe_server, time_env)
        tenant = await onboarded(lc, "starter", prefix="pause")
        tid, sub = tenant.tenant_id, str(tenant.billing_subscription_id)
        not_paused = await http.post(f"/tenants/{tid}/resume")
        assert_problem(not_paused, 409, "is ACTIVE; resume needs a paused tenant")
        past = await http.post(
            f"/tenants/{tid}/pause", json={"reason": "x", "resume_at": "2001-01-01T00:00:00Z"}
        )
        assert_problem(past, 422, "resume_at")
        naive = await http.post(
            f"/tenants/{tid}/pause", json={"reason": "x", "resume_at": "2099-01-01T00:00:00"}
        )
        assert_problem(naive, 422, "resume_at")
        r = await http.post(f"/tenants/{tid}/pause", json={"reason": "no end date"})
        assert r.status_code == 202, r.text
        await time_env.sleep(timedelta(days=40))  # no resume_at: paused until resumed
        assert (await lc.get_tenant(tid)).state is TenantState.SUSPENDED
        assert pauses(stripe_server, sub) == [{"behavior": "void"}]

        r = await http.post(f"/tenants/{tid}/resume")
        assert r.status_code == 202, r.text
        result = await skip_to_result(time_env, lc.core.handle(r.json()["workflow_id"]))
        assert result["outcome"] == "resumed early"
        assert pauses(stripe_server, sub) == [{"behavior": "void"}, ""]  # collection resumed
        t = await lc.get_tenant(tid)
        assert t.state is TenantState.ACTIVE
        assert t.entitlements == lc.settings.plans.get("starter").limits.as_dict()
        late = await http.post(f"/tenants/{tid}/resume")
        assert_problem(late, 409, "resume needs a paused tenant")
