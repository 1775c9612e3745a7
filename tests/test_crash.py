"""Crash and restart survival: SIGKILLed worker processes and a restarted Temporal server."""

from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from lifecycle.client import LifecycleClient
from lifecycle.db import create_engine, migrate, sessionmaker
from lifecycle.models import OnboardRequest
from lifecycle.repository import TenantRepository
from tests.conftest import make_settings, uid
from tests.crash import worker_process


async def test_onboarding_worker_killed_after_billing_completes_once(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    target = dev_env.client.service_client.config.target_host
    settings = make_settings(tmp_path, temporal_address=target)
    engine = create_engine(settings.db_url)
    await migrate(engine)
    lc = LifecycleClient(settings, dev_env.client, TenantRepository(sessionmaker(engine)))
    tenant = uid("crash")
    async with worker_process(
        settings, tmp_path / "w1.log", "billing.after_start_subscription"
    ) as w1:
        started = await lc.onboard_tenant(
            OnboardRequest(tenant_id=tenant, name="C", email="c@c.io", plan="starter")
        )
        await w1.wait_killed()
    assert not await lc.repository.exists(tenant)
    async with worker_process(settings, tmp_path / "w2.log"):
        result = await lc.handle(started.workflow_id).result()
    assert result["state"] == "ACTIVE"
    tenant_view = await lc.get_tenant(tenant)
    assert tenant_view.plan == "starter"
    events = await lc.repository.events(tenant)
    assert [(e.operation, e.to_state) for e in events] == [("onboard", "ACTIVE")]
    await engine.dispose()
