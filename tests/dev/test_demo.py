"""The main job end to end on the dev server: every operation's step ends as expected, and a
second run on the same data onboards nobody twice."""

from pathlib import Path

import pytest
from rich.console import Console
from temporalio.testing import WorkflowEnvironment

from lifecycle.dev.demo import run_demo
from lifecycle.dev.devserver import free_port
from lifecycle.dev.stack import use_sample_application
from lifecycle.domain.states import TenantState
from tests.support.fixtures import make_settings, running_stack, serve_api

OPERATIONS = [
    "upgrade",
    "downgrade refused for usage",
    "downgrade at period end",
    "GDPR export + verify",
    "suspend + reactivate",
    "soft delete + CLI reactivate",
    "soft delete (retention)",
]


async def test_main_job_twice(
    dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # use_sample_application sets these in os.environ (for the worker child process):
    # recorded as absent first, so that monkeypatch removes them after the test and they do
    # not leak a data map into later tests' settings
    for var in ("APP_DATABASE_URL", "APP_STORAGE_URL", "DATA_MAP_PATH"):
        monkeypatch.setenv(var, "")
        monkeypatch.delenv(var)
    settings = make_settings(
        tmp_path,
        temporal_address=dev_env.client.service_client.config.target_host,
        api_port=free_port(),
    )
    use_sample_application(settings)  # the embedded default's data map (sets APP_* vars)
    console = Console(record=True, width=200)
    async with running_stack(dev_env, settings) as lc, serve_api(lc, settings.api_port):
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
    assert all(s.ok for s in second), [(s.operation, s.outcome) for s in second if not s.ok]
    assert total == 8
    deleted = [t for t in tenants if t.state is TenantState.DELETED]
    assert len(deleted) == 2 and all(t.purge_scheduled_at for t in deleted)
    text = console.export_text()
    assert "verified" in text and "rows match the source" in text
