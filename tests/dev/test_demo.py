"""The main job end to end on the dev server, with the sample application caching in a real
Redis: every operation's step ends as expected (the erasure leaves no row, file or cache
entry), and a second run on the same data onboards nobody twice."""

from pathlib import Path

import pytest
from rich.console import Console
from temporalio.testing import WorkflowEnvironment

from lifecycle.dev.demo import run_demo
from lifecycle.dev.devserver import free_port
from lifecycle.dev.stack import sample_application_env
from lifecycle.domain.states import TenantState
from tests.support.fixtures import make_settings, running_stack, serve_api
from tests.support.histories import activity_spans

OPERATIONS = [
    "upgrade",
    "downgrade refused for usage",
    "downgrade at period end",
    "GDPR export + verify",
    "suspend + reactivate",
    "soft delete + CLI reactivate",
    "soft delete (retention)",
    "erase: delete + purge now + certificate",
]


async def test_main_job_twice(
    own_dev_env: WorkflowEnvironment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    redis_url: str,
) -> None:
    for var in ("APP_DATABASE_URL", "APP_STORAGE_URL", "DATA_MAP_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("APP_REDIS_URL", redis_url)  # the sample caches in Redis: purged too
    settings = make_settings(
        tmp_path,
        temporal_address=own_dev_env.client.service_client.config.target_host,
        api_port=free_port(),
    )
    for var, value in sample_application_env(settings).items():  # the embedded default's
        monkeypatch.setenv(var, value)  # data map, restored after the test
    console = Console(record=True, width=200)
    async with running_stack(own_dev_env, settings) as lc, serve_api(lc, settings.api_port):
        first = await run_demo(settings, console, tenants=8, size_mb=2)
        second = await run_demo(settings, console, tenants=8, size_mb=2)
        tenants, total = await lc.repository.list(limit=100)
    onboarded = [s for s in first if s.operation == "onboard + usage"]
    assert len(onboarded) == 8 and all(s.ok for s in onboarded)
    assert sorted(s.operation for s in first if s.operation != "onboard + usage") == sorted(
        OPERATIONS
    )
    assert all(s.ok for s in first), [(s.operation, s.outcome) for s in first if not s.ok]
    assert not any(s.operation == "onboard + usage" for s in second)
    # the second run carries on with the tenants left; what it cannot do is reported as not run
    assert all(s.ok or s.outcome.startswith("not run: ") for s in second), [
        (s.operation, s.outcome) for s in second if not s.ok
    ]
    assert total == 8
    deleted = [t for t in tenants if t.state is TenantState.DELETED and t.purged_at is None]
    retained = [s for s in first + second if s.operation == "soft delete (retention)" and s.ok]
    assert len(deleted) == len(retained) >= 1 and all(t.purge_scheduled_at for t in deleted)
    # erasure end to end: the company's rows and files are gone, the certificate verifies
    (erasure,) = [s for s in first if s.operation.startswith("erase")]
    assert erasure.erasure is not None
    assert erasure.erasure["rows_before"] > 0 and erasure.erasure["files_before"] > 0
    assert erasure.erasure["cache_before"] > 0
    assert erasure.erasure["rows_after"] == 0 and erasure.erasure["files_after"] == 0
    assert erasure.erasure["cache_after"] == 0
    assert erasure.erasure["certificate_valid"] is True
    assert erasure.tenant in {t.tenant_id for t in tenants if t.purged_at is not None}
    # the tables of one level of the deletion order were purged at once
    history = own_dev_env.client.get_workflow_handle(f"tenant-{erasure.tenant}-deletion")
    _began, spans = await activity_spans(history)
    purges = [s for s in spans if s.name == "purge_store"]
    events = sorted(
        [(s.scheduled_event, "scheduled", s.summary) for s in purges]
        + [(s.completed_event, "completed", s.summary) for s in purges if s.completed_event]
    )
    order = [(kind, store) for _event, kind, store in events]
    children = [f"purge app.{t}" for t in ("ad_variants", "clicks", "impressions")]
    assert order[:3] == [("scheduled", c) for c in children], order
    text = console.export_text()
    assert "verified" in text and "rows match the source" in text
    assert "verified offline" in text
