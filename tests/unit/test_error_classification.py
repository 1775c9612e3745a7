"""Which activity failures are retried (issue 12, defect 7): non-transient errors are
non-retryable at once with a clear type; transient ones keep Temporal's retry policy.
Billing runs against the Stripe-compatible server, the database errors against SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import domain_errors
from activities.billing import (
    BillingActivities,
    ChangePriceInput,
    PeriodInput,
    make_stripe_client,
)
from activities.purge import PurgeActivities
from lifecycle.domain.deletion import PurgeTarget
from lifecycle.persistence.engine import create_engine
from tests.support.fixtures import make_settings
from tests.support.stripe_server import StripeServer

CASES = [
    (400, "InvalidBillingRequest", True),
    (401, "InvalidBillingRequest", True),
    (403, "InvalidBillingRequest", True),
    (404, "InvalidBillingRequest", True),
    (409, "BillingUnavailable", False),
    (429, "BillingRateLimited", False),  # retried after Retry-After
    (500, "BillingUnavailable", False),
    (503, "BillingUnavailable", False),
]


@pytest.mark.parametrize(("status", "kind", "final"), CASES)
async def test_billing_4xx_but_409_and_429_are_final(
    stripe_server: StripeServer, status: int, kind: str, final: bool
) -> None:
    billing = BillingActivities(make_stripe_client(stripe_server.api_key, stripe_server.url))
    stripe_server.fail("GET", "/v1/subscriptions/", "http_error", status=status)
    data = ChangePriceInput(
        tenant_id="acme",
        subscription_id="sub_x",
        price_id="price_starter",
        proration_behavior="none",
        idempotency_key="wf:run:billing",
    )
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(billing.change_price, data)
    assert (err.value.type, err.value.non_retryable) == (kind, final)
    assert f"HTTP {status}" in err.value.message
    assert [e.status for e in stripe_server.journal] == [status]


async def test_network_error_is_retried() -> None:
    billing = BillingActivities(make_stripe_client("sk_test", "http://127.0.0.1:9"))
    data = PeriodInput(tenant_id="acme", subscription_id="sub_x")
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(billing.current_period, data)
    assert (err.value.type, err.value.non_retryable) == ("BillingUnavailable", False)


async def test_integrity_error_is_not_retried(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'app.db'}")

    @domain_errors
    async def insert_twice() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))
            await conn.execute(text("INSERT INTO t VALUES (1)"))

    with pytest.raises(ApplicationError) as err:
        await insert_twice()
    await engine.dispose()
    assert (err.value.type, err.value.non_retryable) == ("IntegrityError", True)
    assert "UNIQUE constraint failed" in err.value.message


async def test_busy_database_is_retried(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    engine = create_async_engine(url, connect_args={"timeout": 0})
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY)"))

    @domain_errors
    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))

    async with engine.connect() as holder:
        await holder.execute(text("BEGIN IMMEDIATE"))  # another writer holds the lock
        with pytest.raises(OperationalError, match="database is locked"):
            await write()  # raised as is: Temporal's retry policy retries it
        await holder.rollback()
    await engine.dispose()


async def test_malformed_data_map_is_not_retried(tmp_path: Path) -> None:
    datamap = tmp_path / "datamap.toml"
    datamap.write_text("[[tables]\nname = ", encoding="utf-8")
    settings = make_settings(tmp_path, data_map_path=datamap)
    purge = PurgeActivities(settings)
    with pytest.raises(ApplicationError) as err:
        await ActivityEnvironment().run(
            purge.count_tenant_data, PurgeTarget(tenant_id="acme", data_key="acme")
        )
    assert (err.value.type, err.value.non_retryable) == ("ConfigError", True)
    assert "malformed" in err.value.message and str(datamap) in err.value.message
