"""Helpers of the deletion, suspension and webhook tests: a SaaS application's data (SQLite
tables and files) behind a data map, tenants written straight into the control plane, and
polling of a tenant's state."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Column, ForeignKey, Integer, MetaData, String, Table, Text
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.billing import BillingResult
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TenantView
from lifecycle.persistence.engine import create_engine
from lifecycle.storage.datamap import load_datamap
from lifecycle.storage.stores import TenantStores
from tests.support.datamaps import two_table_datamap

metadata = MetaData()
projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(63), nullable=False, index=True),
    Column("title", Text),
)
notes = Table(
    "notes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("body", Text),
)

PROJECTS, NOTES_PER_PROJECT, FILES = 5, 3, 3


@dataclass
class AppData:
    """The application's stores for the tests: ``datamap`` is the TOML file."""

    db: Path
    files: Path
    datamap: Path

    def expected(self) -> dict[str, dict[str, int]]:
        """Counts each seeded tenant has before any purge (exports: a 10-byte archive and a
        5-byte staging part of an unfinished export, laid out like ExportStorage)."""
        return {
            "app.projects": {"rows": PROJECTS},
            "app.notes": {"rows": PROJECTS * NOTES_PER_PROJECT},
            "storage[0]": {"files": FILES, "bytes": sum(range(1, FILES + 1))},
            "exports": {"files": 2, "bytes": 15},
        }


async def make_app_data(tmp_path: Path, exports_dir: Path, tenants: list[str]) -> AppData:
    """Create the application's database and files with the same data for each tenant."""
    app = AppData(tmp_path / "app.db", tmp_path / "files", tmp_path / "datamap.toml")
    app.datamap.write_text(
        two_table_datamap(f"sqlite+aiosqlite:///{app.db}", str(app.files), "tenant"),
        encoding="utf-8",
    )
    engine = create_engine(f"sqlite+aiosqlite:///{app.db}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        pid = nid = 0
        for tenant in tenants:
            for _ in range(PROJECTS):
                pid += 1
                await conn.execute(projects.insert(), [{"id": pid, "tenant": tenant}])
                for _ in range(NOTES_PER_PROJECT):
                    nid += 1
                    await conn.execute(notes.insert(), [{"id": nid, "project_id": pid}])
    await engine.dispose()
    for tenant in tenants:
        (app.files / tenant / "img").mkdir(parents=True)
        for i in range(FILES):
            (app.files / tenant / "img" / f"{i}.png").write_bytes(b"x" * (i + 1))
        (exports_dir / "archives" / tenant).mkdir(parents=True)
        (exports_dir / "archives" / tenant / "export-1.zip").write_bytes(b"z" * 10)
        (exports_dir / "staging" / tenant / "export-2").mkdir(parents=True)
        (exports_dir / "staging" / tenant / "export-2" / "0.part").write_bytes(b"p" * 5)
    return app


async def counts(app: AppData, exports_dir: Path, tenant: str) -> dict[str, dict[str, int]]:
    """What the tenant has in every store now (same names as the certificate)."""
    stores = await TenantStores.open(load_datamap(app.datamap))
    try:
        out = await stores.counts(tenant)
    finally:
        await stores.close()
    files = [
        p
        for area in ("archives", "staging")
        for p in (exports_dir / area / tenant).rglob("*")
        if p.is_file()
    ]
    out["exports"] = {"files": len(files), "bytes": sum(p.stat().st_size for p in files)}
    return out


async def new_tenant(
    lc: LifecycleClient,
    tenant_id: str,
    plan: str = "starter",
    subscription_id: str | None = None,
    data_key: str | None = None,
) -> TenantView:
    """An ACTIVE tenant written straight into the control plane (as onboarding leaves it);
    ``data_key`` defaults to the tenant id."""
    return await lc.repository.create_tenant(
        CreateTenantInput(
            request=OnboardRequest(
                tenant_id=tenant_id,
                name=tenant_id.title(),
                email=f"ops@{tenant_id}.io",
                plan=plan,
                data_key=data_key,
            ),
            limits=lc.settings.plans.get(plan).limits.as_dict(),
            billing=BillingResult(subscription_id=subscription_id),
            workflow_id=f"seed-{tenant_id}",
            actor="test",
        )
    )


async def skip_to_result(
    env: WorkflowEnvironment, handle: WorkflowHandle[Any, Any], attempts: int = 60
) -> Any:
    """``handle.result()`` with time skipping unlocked, as the handles the time-skipping
    environment returns from ``start_workflow`` do (ours come from ``get_workflow_handle``).

    The test server's history long poll can return before the workflow closed (the SDK then
    raises "No completion event found", e.g. while an activity of a killed worker waits for
    its heartbeat timeout): poll again, up to ``attempts`` times.
    """
    for attempt in range(attempts):
        try:
            async with env.time_skipping_unlocked():  # type: ignore[attr-defined]
                return await handle.result()
        except RuntimeError as exc:
            if "No completion event" not in str(exc) or attempt == attempts - 1:
                raise
            await asyncio.sleep(1)


async def wait_state(lc: LifecycleClient, tenant_id: str, state: TenantState) -> TenantView:
    """Poll the tenant row until it is in ``state`` (at most ~20 s)."""
    for _ in range(400):
        tenant = await lc.get_tenant(tenant_id)
        if tenant.state is state:
            return tenant
        await asyncio.sleep(0.05)
    raise AssertionError(f"tenant {tenant_id} stayed {tenant.state}, expected {state}")
