"""The policy simulator: each scenario runs the real workflows and activities (a child
``python -m worker``) on the time-skipping test server, and its timeline shows the policy."""

import itertools
import json

from typer.testing import CliRunner

from lifecycle.cli.app import app
from lifecycle.dev.simulate import Timeline, simulate


def days_of(timeline: Timeline, event: str) -> list[int]:
    return [e.day for e in timeline.events if e.event == event]


def test_cli_deletion_json_purges_on_day_30_with_a_verified_certificate() -> None:
    result = CliRunner().invoke(app, ["simulate", "deletion", "--days", "40", "--json"])
    assert result.exit_code == 0, result.output
    timeline = json.loads(result.output)
    events = {(e["day"], e["event"]) for e in timeline["events"]}
    assert (0, "soft-deleted") in events and (29, "reactivatable") in events
    assert (30, "purged") in events and (30, "certificate-verified") in events
    assert not any(e["event"] == "purged" and e["day"] < 30 for e in timeline["events"])


async def test_deletion_follows_the_retention_days() -> None:
    timeline = await simulate("deletion", days=40, retention_days=35)
    assert max(days_of(timeline, "reactivatable")) == 34
    assert days_of(timeline, "purged") == [35] == days_of(timeline, "certificate-verified")


async def test_downgrade_is_scheduled_then_applied_at_period_end() -> None:
    timeline = await simulate("downgrade", days=40)
    assert days_of(timeline, "downgrade-scheduled") == [0]
    (applied,) = [e for e in timeline.events if e.event == "downgrade-applied"]
    assert 28 <= applied.day <= 32 and "plan " in applied.detail
    assert all(e.event == "pending" for e in timeline.events if 0 < e.day < applied.day)


async def test_export_is_deleted_when_its_retention_ends() -> None:
    timeline = await simulate("export-retention", days=40, retention_days=30)
    assert days_of(timeline, "export-completed") == [0]
    assert max(days_of(timeline, "downloadable")) == 29
    assert days_of(timeline, "export-deleted") == [30]


async def test_payment_failure_walks_the_ladder_then_payment_reinstates() -> None:
    timeline = await simulate("payment-failure", days=10)
    names = [e.event for e in timeline.events]
    assert names[0] == "payment-failed" and "past-due" in names
    steps = [(e.day, e.detail) for e in timeline.events if e.event == "dunning-step"]
    assert [d for _, d in steps] == ["notify (day 0)", "read_only (day 2)", "suspend (day 5)"]
    read_only, suspended = (day for day, _ in steps[1:])  # seen the day after they apply
    assert 2 <= read_only <= 3 and 5 <= suspended <= 6
    assert names[-2:] == ["invoice-paid", "reinstated"]
    assert timeline.events[-1].detail.startswith("ACTIVE on ")
    assert timeline.events[-1].detail.endswith("plan limits")


async def test_trial_notice_then_end() -> None:
    timeline = await simulate("trial", days=20)
    names = [e.event for e in timeline.events]
    assert names[0] == "trial-started" and "trialing" in names
    (notice,) = days_of(timeline, "trial-ending")
    (ended,) = days_of(timeline, "trial-ended")
    assert 11 <= notice <= 12 and 14 <= ended <= 15  # TRIAL_DAYS 14, notice 3 days before
    assert names[-1] == "trial-over" and "downgraded to free" in timeline.events[-1].detail


async def test_pause_resumes_on_schedule() -> None:
    timeline = await simulate("pause", days=20)
    names = [e.event for e in timeline.events]
    assert names[0] == "pause" and names.count("paused") >= 8
    assert all("SUSPENDED (paused)" in e.detail for e in timeline.events if e.event == "paused")
    (resumed,) = days_of(timeline, "resumed")
    assert 10 <= resumed <= 11  # PAUSE_DAYS
    detail = timeline.events[-1].detail
    assert detail.startswith("resumed on schedule: ACTIVE on ") and detail.endswith("plan limits")


async def test_event_delivery_backs_off_through_an_outage_then_fails_and_is_redelivered() -> None:
    timeline = await simulate("event-delivery")
    names = [e.event for e in timeline.events]
    assert names.count("receiver-down") == 2
    # the 6-hour outage: 2 s doubling back-off, at most an hour apart, then the delivery
    short = names[: names.index("receiver-down", 1)]
    tries = [e.detail for e in timeline.events[: len(short)] if e.event == "attempt"]
    assert len(tries) >= 10 and all("tenant.suspended" in d and ": 503" in d for d in tries)
    assert tries[0] < "+00:01:00" and tries[-1] > "+05:00:00"
    hms = [d[1:9].split(":") for d in tries]
    at = [int(h) * 3600 + int(m) * 60 + int(sec) for h, m, sec in hms]
    gaps = [b - a for a, b in itertools.pairwise(at)]
    assert all(abs(gap - 2 ** (i + 1)) <= 1 for i, gap in enumerate(gaps[:6]))  # 2 s doubling
    assert all(abs(gap - 3600) <= 2 for gap in gaps[-3:])  # at most an hour apart
    (delivered,) = [e for e in timeline.events[: len(short)] if e.event == "delivered"]
    assert delivered.detail.startswith("+06:") and ": 200" in delivered.detail
    # past the 3-day horizon: retried day after day, failed, redelivered once it is back
    retrying = [e for e in timeline.events if e.event == "retrying"]
    assert [e.day for e in retrying] == [0, 1, 2, 3]  # from +6 h to the horizon, 3 days later
    assert all("tenant.reactivated" in e.detail and "503" in e.detail for e in retrying)
    assert names[-4:] == ["failed", "receiver-up", "redeliver", "delivered"]
    (failed,) = [e for e in timeline.events if e.event == "failed"]
    assert "503" in failed.detail
    assert 3 <= timeline.events[-2].day <= 5 and ": 200" in timeline.events[-1].detail


def test_cli_unknown_scenario_exits_2() -> None:
    result = CliRunner().invoke(app, ["simulate", "time-travel"])
    assert result.exit_code == 2 and "deletion" in result.output
