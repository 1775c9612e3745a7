"""Plan-change rules and priced previews (issue 17, item 4): the plans file's matrix, a
not_allowed pair refused before anything starts, the downgrade's timing from its rule, and
the preview's proration from the Stripe-compatible server's invoice preview."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.errors import ConfigError
from lifecycle.domain.plan_changes import PlanChangeNotAllowed
from lifecycle.domain.plans import DEFAULT_PLANS_PATH, load_plans
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.suspension import SuspendRequest
from tests.operations.test_downgrade import wait_for_step
from tests.support.fixtures import make_settings, running_stack
from tests.support.plan_fixtures import billing_settings, finish, onboarded, sync_clock
from tests.support.stripe_server import PERIOD_SECONDS, StripeServer


def plans_file(tmp_path: Path, rules: str) -> Path:
    """The shipped plans file with ``rules`` (TOML ``[changes.*]`` tables) instead of its own."""
    shipped = DEFAULT_PLANS_PATH.read_text(encoding="utf-8")
    path = tmp_path / "plans.toml"
    path.write_text(shipped.split("\n# Plan-change rules")[0] + "\n" + rules, encoding="utf-8")
    return path


def test_rules_default_to_upgrades_now_and_downgrades_at_period_end(tmp_path: Path) -> None:
    shipped = load_plans()
    assert shipped.rule("free", "enterprise") == "immediate"
    assert shipped.rule("professional", "starter") == "end_of_period"
    assert shipped.rule("enterprise", "free") == "not_allowed"
    custom = load_plans(plans_file(tmp_path, '[changes.starter]\nfree = "immediate"\n'))
    assert custom.rule("starter", "free") == "immediate"
    assert custom.rule("enterprise", "free") == "end_of_period"


@pytest.mark.parametrize(
    ("rules", "error"),
    [
        ('[changes.gold]\nfree = "immediate"\n', "changes.gold.free: unknown plan"),
        ('[changes.free]\nfree = "immediate"\n', "cannot change to itself"),
        ('[changes.free]\nstarter = "end_of_period"\n', "end_of_period upgrades"),
        ('[changes.free]\nstarter = "later"\n', "changes.free.starter"),
    ],
)
def test_a_bad_rule_names_the_pair(tmp_path: Path, rules: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        load_plans(plans_file(tmp_path, rules))


async def test_a_not_allowed_change_is_refused_before_any_side_effect(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "enterprise")
        calls = len(stripe_server.journal)
        with pytest.raises(PlanChangeNotAllowed, match=r"\[changes.enterprise\] free"):
            await lc.plan_changes.downgrade_tenant(tenant.tenant_id, "free", "immediately")
        started = await lc.suspension.suspend_tenant(tenant.tenant_id, SuspendRequest(reason="r"))
        await finish(time_env, lc, started.workflow_id)
        with pytest.raises(PlanChangeNotAllowed):
            await lc.reactivation.reactivate_tenant(
                tenant.tenant_id, ReactivateRequest(plan="free")
            )
        runs, _ = await lc.repository.tenant_operations(tenant.tenant_id)
        after = await lc.get_tenant(tenant.tenant_id)
    assert sorted(op.kind for op in runs) == ["onboard", "suspend"]
    assert after.plan == "enterprise" and after.pending_plan_change is None
    assert [e.path for e in stripe_server.journal[calls:]] == []  # suspension keeps billing


async def test_a_downgrade_without_effective_follows_its_rule(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    rules = '[changes.professional]\nstarter = "immediate"\n'
    settings = make_settings(tmp_path, plans_path=plans_file(tmp_path, rules))
    async with running_stack(time_env, settings) as lc:
        now_rule = await onboarded(lc, "professional")
        default_rule = await onboarded(lc, "starter")
        immediate = await lc.plan_changes.downgrade_tenant(now_rule.tenant_id, "starter")
        result = await finish(time_env, lc, immediate.workflow_id)
        later = await lc.plan_changes.downgrade_tenant(default_rule.tenant_id, "free")
        await wait_for_step(lc, later.workflow_id, "waiting-for-period-end")
        pending = await lc.get_tenant(default_rule.tenant_id)
    assert (immediate.effective, result["plan"]) == ("immediately", "starter")
    assert later.effective == "period_end"
    assert pending.plan == "starter" and pending.pending_plan_change is not None


async def test_the_preview_prices_an_upgrade_with_stripes_invoice_preview(
    time_env: WorkflowEnvironment, tmp_path: Path, stripe_server: StripeServer
) -> None:
    await sync_clock(stripe_server, time_env)
    async with running_stack(time_env, billing_settings(tmp_path, stripe_server)) as lc:
        tenant = await onboarded(lc, "starter", {"users": 8})
        stripe_server.clock_offset += PERIOD_SECONDS / 2  # half the period is left
        up = await lc.plan_changes.plan_change_preview(tenant.tenant_id, "professional")
        down = await lc.plan_changes.plan_change_preview(tenant.tenant_id, "free")

    assert (up.direction, up.rule, up.effective, up.allowed) == (
        "upgrade",
        "immediate",
        "immediately",
        True,
    )
    users = next(e for e in up.entitlements if e.resource == "users")
    assert (users.current, users.target, users.change) == (10, 50, "more")
    # credit half of 29.00, charge half of 99.00 (to the second: within a cent)
    assert up.proration.available and up.proration.currency == "usd"
    assert up.proration.amount_cents is not None and abs(up.proration.amount_cents - 3500) <= 1
    credit, charge, _next = up.proration.lines
    assert (credit.proration, charge.proration) == (True, True)
    assert abs(credit.amount_cents + 1450) <= 1 and abs(charge.amount_cents - 4950) <= 1
    assert up.proration.next_invoice_cents == up.proration.amount_cents + 9900
    preview_calls = [e for e in stripe_server.journal if e.path == "/v1/invoices/create_preview"]
    assert preview_calls[0].params["subscription_details"]["items"][0]["price"] == (
        "price_professional"
    )
    assert stripe_server.price_changes == []  # a preview bills nothing

    assert (down.direction, down.rule, down.effective, down.allowed) == (
        "downgrade",
        "end_of_period",
        "period_end",
        False,
    )
    assert [str(v) for v in down.violations] == ["users 8 > 3"] and down.reasons == ["users 8 > 3"]
    assert down.proration.proration_behavior == "none" and down.proration.amount_cents == 0
    assert down.proration.next_invoice_cents == 0


async def test_the_preview_in_limited_mode_says_proration_is_unavailable(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(time_env, make_settings(tmp_path)) as lc:
        tenant = await onboarded(lc, "enterprise")
        preview = await lc.plan_changes.plan_change_preview(tenant.tenant_id, "free")
    assert (preview.rule, preview.allowed, preview.effective) == ("not_allowed", False, None)
    assert "[changes.enterprise] free" in preview.reasons[0]
    assert not preview.proration.available and preview.proration.amount_cents is None
    assert "limited mode" in (preview.proration.reason or "")
