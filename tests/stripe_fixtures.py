"""Fixtures and helpers for tests that bill through the Stripe-compatible test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from lifecycle.client import LifecycleClient
from lifecycle.config import Settings
from lifecycle.models import OnboardRequest, TenantView
from lifecycle.plans import load_plans
from tests.conftest import make_settings, uid
from tests.stripe_server import StripeServer


@pytest.fixture
async def stripe_server() -> AsyncIterator[StripeServer]:
    """A fresh Stripe-compatible server on 127.0.0.1 with the shipped plans' prices."""
    server = StripeServer()
    for plan in load_plans().plans:
        server.add_price(plan.price_id, plan.monthly_price_cents)
    await server.start()
    yield server
    await server.stop()


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
    started = await lc.onboard_tenant(
        OnboardRequest(tenant_id=tenant_id, name=tenant_id, email=f"ops@{tenant_id}.io", plan=plan)
    )
    await lc.handle(started.workflow_id).result()
    if usage:
        await lc.record_usage(tenant_id, usage)
    return await lc.get_tenant(tenant_id)
