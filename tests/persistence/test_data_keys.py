"""Unique, immutable data keys on SQLite and on a real PostgreSQL: the partial unique index,
the holder named in the conflict, concurrent onboardings, reuse after a purge, and the
migration of existing duplicates."""

import asyncio
import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import select, text, update

from lifecycle.domain.billing import BillingResult
from lifecycle.domain.errors import DataKeyConflict
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest
from lifecycle.domain.states import TenantState as S
from lifecycle.domain.tenants import TransitionInput, canonical_data_key
from lifecycle.persistence.deletion import DeletionRepository
from lifecycle.persistence.engine import MIGRATIONS_DIR, Sessions, create_engine, migrate
from lifecycle.persistence.tables import Tenant
from lifecycle.persistence.tenants import TenantRepository
from tests.support.fixtures import fresh_pg_database

LIMITS = {"users": 10}


def _input(tenant_id: str, data_key: str | None) -> CreateTenantInput:
    return CreateTenantInput(
        request=OnboardRequest(
            tenant_id=tenant_id,
            name=tenant_id,
            email=f"a@{tenant_id}.example",
            plan="starter",
            data_key=data_key,
        ),
        limits=LIMITS,
        billing=BillingResult(skipped=True),
        workflow_id=f"tenant-{tenant_id}-onboard",
        actor="test",
    )


def test_canonical_keys_compare_as_the_column_types_would() -> None:
    assert {canonical_data_key(k) for k in ("1", "01", "1.0", "001.000")} == {"1"}
    assert canonical_data_key("1_0") == canonical_data_key("1e1") == "10"
    upper = "123E4567E89B12D3A456426614174000"
    assert canonical_data_key(upper) == "123e4567-e89b-12d3-a456-426614174000"
    assert canonical_data_key("Acme") != canonical_data_key("acme")  # text is case-sensitive
    assert canonical_data_key("1e999999999") == "1e999999999"  # no huge expansion


async def test_a_live_tenants_key_is_refused_naming_the_holder(
    repository: TenantRepository,
) -> None:
    await repository.create_tenant(_input("acme", "1"))
    for key in ("1", "01", "1.0"):
        with pytest.raises(DataKeyConflict, match="data key '.*' is held by tenant 'acme'"):
            await repository.create_tenant(_input("intruder", key))
    assert not await repository.exists("intruder")
    # a key that defaults to the tenant id is held like any other
    await repository.create_tenant(_input("globex", "initech"))
    with pytest.raises(DataKeyConflict, match="data key 'initech' is held by tenant 'globex'"):
        await repository.create_tenant(_input("initech", None))
    assert await repository.data_key_holder("01") == "acme"
    assert await repository.data_key_holder("1", "acme") is None
    # text keys compare exactly
    await repository.create_tenant(_input("other", "Initech"))


async def test_two_concurrent_onboardings_with_one_key_leave_one_holder(
    repository: TenantRepository,
) -> None:
    results = await asyncio.gather(
        *(repository.create_tenant(_input(f"racer-{i}", "42")) for i in range(4)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, BaseException)]
    assert len(winners) == 1 and len(losers) == 3
    holder = winners[0].tenant_id
    assert all(isinstance(e, DataKeyConflict) and e.holder == holder for e in losers)
    async with repository.sessions() as session:
        rows = (await session.scalars(select(Tenant.id).where(Tenant.data_key == "42"))).all()
    assert rows == [holder]


async def test_a_purged_tenants_key_may_be_reused(repository: TenantRepository) -> None:
    await repository.create_tenant(_input("acme", "7"))
    async with repository.sessions.begin() as session:
        await session.execute(
            update(Tenant).where(Tenant.id == "acme").values(purged_at=datetime.now(UTC))
        )
    reused = await repository.create_tenant(_input("newco", "07"))
    assert reused.data_key == "07"
    assert await repository.data_key_holder("7") == "newco"


async def test_the_data_key_is_immutable(repository: TenantRepository) -> None:
    await repository.create_tenant(_input("acme", "5"))
    change = TransitionInput(
        tenant_id="acme",
        from_states=[S.ACTIVE],
        to_state=S.SUSPENDED,
        operation="suspend",
        workflow_id="w",
        changes={"data_key": "6"},
    )
    with pytest.raises(ValueError, match="data_key"):
        await repository.transition(change)
    assert (await repository.get("acme")).data_key == "5"


async def test_the_purge_refuses_a_key_another_live_tenant_holds(
    repository: TenantRepository,
) -> None:
    """Defence in depth: two live tenants sharing a key (e.g. from before the migration)."""
    await repository.create_tenant(_input("acme", "3"))
    await repository.create_tenant(_input("intruder", "x"))
    async with repository.sessions.begin() as session:  # what a pre-migration row looks like
        await session.execute(
            update(Tenant)
            .where(Tenant.id == "intruder")
            .values(data_key="3", data_key_canonical=None, state=S.DELETED.value)
        )
    with pytest.raises(DataKeyConflict, match="data key '3' is held by tenant 'acme'"):
        await DeletionRepository(repository).begin_purge("intruder", "wf")
    assert (await repository.get("intruder")).version == 1  # nothing changed


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_migration_keeps_the_oldest_holder_of_a_shared_key(
    backend: str, tmp_path: Path, pg_admin_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        if backend == "sqlite":
            url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
        else:  # a database of its own (dropped after the test), at the schema before 0003
            url = await stack.enter_async_context(fresh_pg_database(pg_admin_url))
        await _migration_keeps_the_oldest_holder(url)


async def _migration_keeps_the_oldest_holder(url: str) -> None:
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))

    def to_0002(connection: object) -> None:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "0002_deletion")

    async with engine.begin() as conn:
        await conn.run_sync(to_0002)
        for i, (tid, key, purged) in enumerate(
            [("acme", "1", None), ("intruder", "01", None), ("gone", "1", "2026-01-01")]
        ):
            await conn.execute(
                text(
                    "INSERT INTO tenants (id, data_key, plan, state, version, usage, "
                    "created_at, updated_at, legal_hold, purged_at) VALUES (:id, :key, "
                    "'free', 'ACTIVE', 1, '{}', :at, :at, false, :purged)"
                ),
                {
                    "id": tid,
                    "key": key,
                    "at": datetime(2026, 1, 1 + i, tzinfo=UTC),
                    "purged": datetime(2026, 2, 1, tzinfo=UTC) if purged else None,
                },
            )
    await migrate(engine)
    repo = TenantRepository(Sessions(engine))
    async with repo.sessions() as session:
        rows = dict((await session.execute(select(Tenant.id, Tenant.data_key_canonical))).all())
    assert rows == {"acme": "1", "intruder": None, "gone": "1"}
    assert await repo.data_key_holder("1", "intruder") == "acme"
    assert await repo.data_key_holder("1", "acme") == "intruder"  # both refused
    with pytest.raises(DataKeyConflict, match="held by tenant 'acme'"):
        await repo.create_tenant(_input("third", "1"))
    await engine.dispose()
