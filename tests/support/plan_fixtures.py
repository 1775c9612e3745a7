"""Fixtures and helpers of the plan-change tests: the Stripe-compatible test server, settings
billing through it, onboarded tenants, waiting for workflows in the time-skipping server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.domain.billing import BillingResult
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest
from lifecycle.domain.plans import load_plans
from lifecycle.domain.tenants import TenantView
from lifecycle.persistence.tenants import TenantRepository
from tests.support.fixtures import make_settings, uid
from tests.support.stripe_server import StripeServer
from tests.support.tenant_data import skip_to_result


@pytest.fixture
async def stripe_server() -> AsyncIterator[StripeServer]:
    """A fresh Stripe-compatible server on 127.0.0.1 with the shipped plans' prices."""
    server = StripeServer()
    for plan in load_plans().plans:
        server.add_price(plan.price_id, plan.monthly_price_cents)
    await server.start()
    yield server
    await server.stop()


async def sync_clock(server: StripeServer, env: WorkflowEnvironment) -> datetime:
    """Set the server's clock to ``env``'s (the session's time-skipping server runs ahead of
    the wall clock by every timer earlier tests skipped); returns that time (UTC)."""
    now = await env.get_current_time()
    server.clock_offset = (now - datetime.now(UTC)).total_seconds()
    return now


def billing_settings(tmp_path: Path, server: StripeServer, **overrides: object) -> Settings:
    """Test settings with billing on, pointed at ``server``."""
    return make_settings(
        tmp_path, stripe_api_key=server.api_key, stripe_api_base=server.url, **overrides
    )


async def onboarded(
    lc: LifecycleClient, plan: str, usage: dict[str, int] | None = None, prefix: str = "t"
) -> TenantView:
    """A new ACTIVE tenant on ``plan`` (onboarded through its workflow), with ``usage``."""
    tenant_id = uid(prefix)
    started = await lc.onboarding.onboard_tenant(
        OnboardRequest(tenant_id=tenant_id, name=tenant_id, email=f"ops@{tenant_id}.io", plan=plan)
    )
    await lc.core.handle(started.workflow_id).result()
    if usage:
        await lc.plan_changes.record_usage(tenant_id, usage)
    return await lc.get_tenant(tenant_id)


async def finish(env: WorkflowEnvironment, lc: LifecycleClient, workflow_id: str) -> Any:
    """The workflow's result, with the test server skipping time (timers and retry backoffs
    pass at once)."""
    return await skip_to_result(env, lc.core.handle(workflow_id))


async def replay(lc: LifecycleClient, workflow_id: str) -> None:
    """Replay the workflow's recorded history against the current workflow code with the
    worker's sandbox: raises when the code is not deterministic."""
    from temporalio.contrib.pydantic import pydantic_data_converter
    from temporalio.worker import Replayer

    from worker import WORKFLOWS, workflow_runner

    history = await lc.core.handle(workflow_id).fetch_history()
    replayer = Replayer(
        workflows=WORKFLOWS,
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )
    await replayer.replay_workflow(history)


async def seeded(
    repository: TenantRepository,
    server: StripeServer | None,
    plan: str,
    count: int,
    prefix: str,
    concurrency: int = 8,
) -> list[str]:
    """``count`` ACTIVE tenants ``<prefix>-00000``... on ``plan`` written straight to the
    control plane (no onboarding workflow: fast enough for thousands), each with a
    subscription to the plan's price seeded in ``server`` (none without a server, as in
    limited mode). Returns their ids in order."""
    catalog = load_plans()
    target = catalog.get(plan)
    ids = [f"{prefix}-{i:05d}" for i in range(count)]
    gate = asyncio.Semaphore(concurrency)

    async def one(tenant_id: str) -> None:
        billing = BillingResult(skipped=True)
        if server is not None:
            sub = server.subscribe(target.price_id)
            customer = server.subscriptions[sub]["customer"]
            billing = BillingResult(customer_id=customer, subscription_id=sub)
        request = OnboardRequest(
            tenant_id=tenant_id, name=tenant_id, email=f"ops@{tenant_id}.io", plan=plan
        )
        async with gate:
            await repository.create_tenant(
                CreateTenantInput(
                    request=request,
                    limits=target.limits.as_dict(),
                    billing=billing,
                    workflow_id=f"seed-{tenant_id}",
                    actor="test",
                )
            )

    await asyncio.gather(*(one(t) for t in ids))
    return ids
