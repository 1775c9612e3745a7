"""The dunning ladder from Stripe webhooks, in the time-skipping server with the
Stripe-compatible server: every step of a plan's ladder, a payment in the middle that restores
the tenant at once, a second failure that climbs to the soft delete, and the ``dunning``
status of ``GET /tenants/{id}``."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.dunning import DunningStep, check_ladder
from lifecycle.domain.errors import ConfigError
from lifecycle.domain.plans import DEFAULT_PLANS_PATH, load_plans
from lifecycle.domain.states import TenantState
from tests.api.test_billing_events import invoice_event, post, sign, webhook_stack
from tests.support.fixtures import uid
from tests.support.plan_fixtures import onboarded, stripe_server, sync_clock
from tests.support.stripe_server import StripeServer
from tests.support.tenant_data import new_tenant, skip_to_result

__all__ = ["stripe_server"]

LADDER = (
    'dunning = [{ day = 0, kind = "notify" }, { day = 3, kind = "read_only" }, '
    '{ day = 7, kind = "suspend" }, { day = 30, kind = "cancel_and_delete" }]'
)


def plans_with_ladder(tmp_path: Path, ladder: str = LADDER) -> Path:
    """The shipped plans file with ``ladder`` on the starter plan."""
    text = DEFAULT_PLANS_PATH.read_text(encoding="utf-8")
    path = tmp_path / "plans.toml"
    path.write_text(text.replace('name = "starter"\n', f'name = "starter"\n{ladder}\n'))
    return path


async def dunning_steps(lc: LifecycleClient, tenant_id: str) -> list[tuple[str, int]]:
    """(kind, day) of the tenant's ``dunning-step`` audit rows, oldest first."""
    return [
        (e.detail["kind"], e.detail["day"])
        for e in await lc.repository.events(tenant_id)
        if e.operation == "dunning-step"
    ]


async def test_the_whole_ladder_with_a_payment_in_the_middle(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    overrides = {
        "stripe_api_key": stripe_server.api_key,
        "stripe_api_base": stripe_server.url,
        "plans_path": plans_with_ladder(tmp_path),
    }
    async with webhook_stack(time_env, tmp_path, **overrides) as (lc, http):
        await sync_clock(stripe_server, time_env)
        stripe_server.follow(time_env.get_current_time)
        tenant = await onboarded(lc, "starter", prefix="dun")
        acme, sub = tenant.tenant_id, tenant.billing_subscription_id
        assert sub is not None
        starter = lc.settings.plans.get("starter").limits.as_dict()
        auth = {"Authorization": "Bearer test-token"}
        wid = f"tenant-{acme}-payment-failure"

        failed = invoice_event("evt_f1", "invoice.payment_failed", sub, "in_1")
        r = await post(http, failed, sign(failed))
        assert r.json()["outcome"].startswith("dunning started: notify on day 0, read_only on")
        await time_env.sleep(timedelta(hours=1))
        shown = (await http.get(f"/tenants/{acme}", headers=auth)).json()
        assert shown["dunning"]["step"] == "notify" and shown["dunning"]["next_step"] == "read_only"
        assert shown["state"] == "ACTIVE" and shown["entitlements"] == starter

        await time_env.sleep(timedelta(days=3))  # day 3: read-only, data and plan kept
        t = await lc.get_tenant(acme)
        assert t.state is TenantState.ACTIVE and t.entitlements == {**starter, "read_only": 1}
        assert t.dunning is not None and t.dunning.step == "read_only"
        assert t.dunning.next_step == "suspend"

        other = invoice_event("evt_f2", "invoice.payment_failed", sub, "in_2")
        r = await post(http, other, sign(other))  # a second overdue invoice: re-evaluated
        assert r.json()["outcome"].startswith("dunning goes on: invoice in_2")

        await time_env.sleep(timedelta(days=4))  # day 7: suspended
        t = await lc.get_tenant(acme)
        assert t.state is TenantState.SUSPENDED and set(t.entitlements.values()) == {0}
        assert t.suspension is not None and t.suspension.kind == "dunning"
        assert t.dunning is not None and t.dunning.next_step == "cancel_and_delete"

        paid1 = invoice_event("evt_p1", "invoice.paid", sub, "in_1")
        await post(http, paid1, sign(paid1))  # one of two: still suspended
        await time_env.sleep(timedelta(hours=1))
        assert (await lc.get_tenant(acme)).state is TenantState.SUSPENDED
        before = len(stripe_server.journal)
        paid2 = invoice_event("evt_p2", "invoice.paid", sub, "in_2")
        await post(http, paid2, sign(paid2))
        result = await skip_to_result(time_env, lc.core.handle(wid))
        assert result["outcome"] == "recovered"
        t = await lc.get_tenant(acme)
        assert t.state is TenantState.ACTIVE and t.plan == "starter" and t.entitlements == starter
        assert t.dunning is None and t.suspension is None and t.billing_subscription_id == sub
        calls = [(e.method, e.path) for e in stripe_server.journal[before:]]
        assert calls == [("GET", f"/v1/subscriptions/{sub}")]  # the subscription was kept
        assert await dunning_steps(lc, acme) == [("notify", 0), ("read_only", 3), ("suspend", 7)]
        operations = [e.operation for e in await lc.repository.events(acme)]
        assert operations.count("payment-recovered") == 1

        # a later failure climbs the whole ladder again, to the soft delete
        again = invoice_event("evt_f3", "invoice.payment_failed", sub, "in_3")
        await post(http, again, sign(again))
        result = await skip_to_result(time_env, lc.core.handle(wid))
        assert result["outcome"] == "cancelled and deleted"
        steps = await dunning_steps(lc, acme)
        assert steps[3:] == [
            ("notify", 0),
            ("read_only", 3),
            ("suspend", 7),
            ("cancel_and_delete", 30),
        ]
        deletion = lc.core.handle(f"tenant-{acme}-deletion")
        await time_env.sleep(timedelta(minutes=5))
        t = await lc.get_tenant(acme)
        assert t.state is TenantState.DELETED and t.dunning is None
        assert (await deletion.describe()).status is not None
        mutations = [(e.method, e.path) for e in stripe_server.mutations()]
        assert ("DELETE", f"/v1/subscriptions/{sub}") in mutations  # billing stopped


async def test_payment_before_the_first_step_changes_nothing(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    path = plans_with_ladder(tmp_path, 'dunning = [{ day = 5, kind = "read_only" }]')
    async with webhook_stack(time_env, tmp_path, plans_path=path) as (lc, http):
        acme = uid("dun")
        await new_tenant(lc, acme, subscription_id=f"sub_{acme}")
        failed = invoice_event("evt_a", "invoice.payment_failed", f"sub_{acme}", "in_9")
        await post(http, failed, sign(failed))
        await time_env.sleep(timedelta(days=1))
        paid = invoice_event("evt_b", "invoice.paid", f"sub_{acme}", "in_9")
        await post(http, paid, sign(paid))
        result = await skip_to_result(time_env, lc.core.handle(f"tenant-{acme}-payment-failure"))
        assert result["outcome"] == "recovered"
        assert await dunning_steps(lc, acme) == []
        t = await lc.get_tenant(acme)
        assert t.state is TenantState.ACTIVE and "read_only" not in t.entitlements


async def test_read_only_holds_across_plan_changes_until_the_payment(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """An operator's upgrade during dunning keeps the tenant read-only on the new plan; the
    payment lifts it on the plan in force, and the provisioning events say each step."""
    ladder = 'dunning = [{ day = 1, kind = "read_only" }, { day = 10, kind = "suspend" }]'
    path = plans_with_ladder(tmp_path, ladder)
    async with webhook_stack(time_env, tmp_path, plans_path=path) as (lc, http):
        acme = uid("dun")
        sub = f"sub_{acme}"
        await new_tenant(lc, acme, subscription_id=sub)
        professional = lc.settings.plans.get("professional").limits.as_dict()
        failed = invoice_event("evt_ro1", "invoice.payment_failed", sub, "in_ro")
        await post(http, failed, sign(failed))
        await time_env.sleep(timedelta(days=1, hours=1))
        assert (await lc.get_tenant(acme)).entitlements["read_only"] == 1

        started = await lc.plan_changes.upgrade_tenant(acme, "professional")
        await skip_to_result(time_env, lc.core.handle(started.workflow_id))
        upgraded = await lc.get_tenant(acme)
        assert (upgraded.state, upgraded.plan) == (TenantState.ACTIVE, "professional")
        assert upgraded.entitlements == {**professional, "read_only": 1}
        assert upgraded.dunning is not None and upgraded.dunning.read_only

        paid = invoice_event("evt_ro2", "invoice.paid", sub, "in_ro")
        await post(http, paid, sign(paid))
        wid = f"tenant-{acme}-payment-failure"
        assert (await skip_to_result(time_env, lc.core.handle(wid)))["outcome"] == "recovered"
        after = await lc.get_tenant(acme)
        events = await lc.outbound_events.events(acme)
    assert (after.plan, after.entitlements, after.dunning) == ("professional", professional, None)
    changes = [
        (e.type, e.data["plan"], e.data["entitlements"].get("read_only"))
        for e in events
        if e.type in ("tenant.entitlements_changed", "tenant.plan_changed")
    ]
    assert changes[0] == ("tenant.entitlements_changed", "starter", 1)  # the read_only step
    assert ("tenant.plan_changed", "professional", 1) in changes
    assert changes[-1] == ("tenant.entitlements_changed", "professional", None)  # paid
    assert events[-1].data["operation"] == "payment-recovered"


async def test_a_downgrade_step_ends_the_ladder_with_read_only_lifted(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    ladder = 'dunning = [{ day = 1, kind = "read_only" }, { day = 3, kind = "downgrade" }]'
    path = plans_with_ladder(tmp_path, ladder)
    async with webhook_stack(time_env, tmp_path, plans_path=path) as (lc, http):
        acme = uid("dun")
        await new_tenant(lc, acme, subscription_id=f"sub_{acme}")
        failed = invoice_event("evt_dd1", "invoice.payment_failed", f"sub_{acme}", "in_dd")
        await post(http, failed, sign(failed))
        wid = f"tenant-{acme}-payment-failure"
        result = await skip_to_result(time_env, lc.core.handle(wid))
        after = await lc.get_tenant(acme)
        free = lc.settings.plans.get("free").limits.as_dict()
        steps = await dunning_steps(lc, acme)
    assert result["outcome"] == "downgraded to free"
    # the downgrade resolves the unpaid invoice: full service on the cheaper plan
    assert (after.plan, after.entitlements) == ("free", free)
    assert after.dunning is None
    assert steps == [("read_only", 1), ("downgrade", 3)]


def test_a_ladder_is_checked_when_the_plans_file_loads(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be the last"):
        check_ladder(
            [DunningStep(day=1, kind="cancel_and_delete"), DunningStep(day=2, kind="notify")]
        )
    with pytest.raises(ValueError, match="comes before"):
        check_ladder([DunningStep(day=5, kind="notify"), DunningStep(day=2, kind="suspend")])
    with pytest.raises(ValueError, match="cannot follow a suspend"):
        check_ladder([DunningStep(day=1, kind="suspend"), DunningStep(day=2, kind="read_only")])
    bad = plans_with_ladder(
        tmp_path, 'dunning = [{ day = 1, kind = "downgrade", to_plan = "gold" }]'
    )
    with pytest.raises(ConfigError, match="unknown to_plan 'gold'"):
        load_plans(bad)
    typo = plans_with_ladder(tmp_path, 'dunning = [{ day = 1, kind = "explode" }]')
    with pytest.raises(ConfigError, match="plans.1.dunning.0.kind"):
        load_plans(typo)
    default = load_plans().dunning_ladder("starter", 3, False)
    assert default == [DunningStep(day=3, kind="suspend")]
    assert (
        load_plans(plans_with_ladder(tmp_path)).dunning_ladder("starter", 3, False)[0].kind
        == "notify"
    )


def test_a_dunning_downgrade_obeys_the_plan_change_rules(tmp_path: Path) -> None:
    """The shipped rule [changes.enterprise] free = "not_allowed" holds for the ladder too:
    the default (ENABLE_AUTO_DOWNGRADE) downgrade of an enterprise tenant goes to the lowest
    plan the rules allow, and a ladder naming a forbidden target is refused at load."""
    plans = load_plans()
    assert plans.dunning_ladder("enterprise", 3, True) == [
        DunningStep(day=3, kind="downgrade", to_plan="starter")
    ]
    assert plans.dunning_ladder("professional", 3, True)[0].to_plan == "free"
    assert plans.dunning_ladder("free", 3, True)[0].to_plan is None  # nothing below: suspended
    text = DEFAULT_PLANS_PATH.read_text(encoding="utf-8")
    ladder = 'dunning = [{ day = 3, kind = "downgrade", to_plan = "free" }]'
    path = tmp_path / "plans.toml"
    path.write_text(text.replace('name = "enterprise"\n', f'name = "enterprise"\n{ladder}\n'))
    with pytest.raises(ConfigError, match=r"rule \[changes.enterprise\] free is not_allowed"):
        load_plans(path)
    forbid_all = text + 'starter = "not_allowed"\nprofessional = "not_allowed"\n'
    path.write_text(forbid_all)
    assert load_plans(path).dunning_ladder("enterprise", 3, True) == [
        DunningStep(day=3, kind="suspend")
    ]


def test_tenantctl_show_says_where_the_tenant_stands() -> None:
    from lifecycle.cli.tenants import dunning_line

    at = "2026-12-06T09:00:00Z"
    tenant = {
        "dunning": {"step": "read_only", "since": at, "next_step": "suspend", "next_step_at": at}
    }
    assert dunning_line(tenant) == f"dunning: read_only since {at}; next: suspend at {at}"
    assert dunning_line({"dunning": None}) is None
    last = {"dunning": {"step": None, "since": at, "next_step": None, "next_step_at": None}}
    assert dunning_line(last) == f"dunning: past due since {at}; no step left"
