"""The console's pure parts: chart geometry, timeline icons, live progress and the page's
refresh period (no server, no browser)."""

from datetime import date

from lifecycle.console.chart import HEIGHT, day_chart
from lifecycle.console.routes import (
    REFRESH_WAITING_MS,
    REFRESH_WORKING_MS,
    event_icon,
    progress_text,
    refresh_ms,
)
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import OperationView, TenantView


def test_day_chart_stacks_outcomes_per_day_and_fills_missing_days() -> None:
    last = date(2026, 12, 3)
    chart = day_chart(
        {
            date(2026, 12, 1): {"completed": 3, "failed": 1},
            last: {"running": 2, "weird": 1},
            date(2026, 11, 1): {"completed": 50},  # outside the window: ignored
        },
        last,
        days=3,
    )
    assert [d.day for d in chart.days] == [date(2026, 12, 1), date(2026, 12, 2), last]
    first, empty, today = chart.days
    assert [(s.outcome, s.count) for s in first.segments] == [("completed", 3), ("failed", 1)]
    assert empty.total == 0 and empty.segments == []
    assert [(s.outcome, s.count) for s in today.segments] == [("running", 2), ("other", 1)]
    assert chart.peak == 4 and chart.ticks[0] == (0, chart.baseline)
    # stacked: each segment sits on the one below, the peak day reaches the top tick
    completed, failed = first.segments
    assert completed.y + completed.height == chart.baseline
    assert failed.y + failed.height == completed.y
    assert failed.y == chart.ticks[-1][1] and 0 < failed.y < HEIGHT
    assert completed.height == 3 * failed.height


def test_day_chart_without_runs_has_an_axis_and_no_bars() -> None:
    chart = day_chart({}, date(2026, 12, 3), days=14)
    assert len(chart.days) == 14 and all(not d.segments for d in chart.days)
    assert chart.peak == 1 and [n for n, _ in chart.ticks] == [0, 1]


def test_timeline_icons_follow_the_operation_name() -> None:
    assert event_icon("legal-hold-released") == event_icon("legal-hold") == "§"
    assert event_icon("reactivate-ignored") == "▶"
    assert event_icon("purge-started") == event_icon("purged") == "⌫"
    assert event_icon("deletion") == "✖"
    assert event_icon("something-new") == "•"


def _op(kind: str, status: str = "running", progress: dict | None = None) -> OperationView:
    result = {"progress": progress} if progress is not None else None
    return OperationView(workflow_id=f"w-{kind}", kind=kind, status=status, result=result)


def test_running_operations_show_their_progress_and_set_the_refresh() -> None:
    export = _op(
        "export",
        progress={
            "operation": "export",
            "step": "chunk",
            "chunks_done": 2,
            "chunks_total": 5,
            "export_id": "x",
        },
    )
    assert progress_text(export) == "chunks done 2, chunks total 5"
    assert progress_text(_op("upgrade", "completed")) == ""
    tenant = TenantView.model_construct(state=TenantState.DELETED, pending_plan_change=None)
    retained = _op(
        "deletion", progress={"phase": "retained", "purge_at": "2027-01-02T07:57:23.56+00:00"}
    )
    assert progress_text(retained) == "phase retained, purge at 2027-01-02 07:57 UTC"
    assert refresh_ms(tenant, [retained]) == REFRESH_WAITING_MS  # a retention timer waits
    assert refresh_ms(tenant, [retained, export]) == REFRESH_WORKING_MS
    assert refresh_ms(tenant, [_op("onboard", "completed")]) is None


def test_tenant_page_shows_the_dunning_step_the_pause_and_the_trial() -> None:
    from datetime import UTC, datetime

    from starlette.requests import Request

    from lifecycle.api.auth import Principal
    from lifecycle.console.routes import templates
    from lifecycle.domain.dunning import DunningStatus
    from lifecycle.domain.tenants import Suspension
    from tests.support.mocked_activities import tenant_view

    at = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    tenant = tenant_view(
        "acme",
        "starter",
        {},
        state=TenantState.SUSPENDED,
        suspension=Suspension(kind="paused", reason="holiday", resume_at=at),
        trial_ends_at=at,
        dunning=DunningStatus(
            step="read_only", since=at, next_step="suspend", next_step_at=at, plan="starter"
        ),
    )
    viewer = Principal("support", "viewer")
    request = Request({"type": "http", "path": "/console/tenants/acme", "headers": []})
    empty: dict[str, object] = dict.fromkeys(
        ["bars", "exports", "operations", "events", "higher", "lower"], []
    )
    html = templates.get_template("tenant.html").render(
        request=request,
        tenant=tenant,
        principal=viewer,
        actions={},
        retention_percent=None,
        **empty,
    )
    assert "dunning</span>" in html
    assert "step read_only since 2026-12-03 · next suspend on 2026-12-03" in html
    assert "plan at failure starter" in html
    assert "paused: holiday · resumes 2026-12-03 09:00 UTC" in html
    assert 'data-testid="trial">2026-12-03 09:00 UTC' in html
