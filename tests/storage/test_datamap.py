"""The data map's live stores on SQLite and PostgreSQL (tenant filters in the column's own
type, parents, keyset pages, batched deletes); file validation: tests/unit/test_datamap.py."""

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, ForeignKey, Integer, LargeBinary, MetaData, String, Table, Text

from lifecycle.domain.errors import ConfigError
from lifecycle.persistence.engine import create_engine
from lifecycle.storage.datamap import parse_datamap
from lifecycle.storage.stores import TenantStores
from tests.support.datamaps import GOOD

metadata = MetaData()
projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, nullable=False, index=True),
    Column("title", Text),
)
notes = Table(
    "notes",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("body", Text),
    Column("blob", LargeBinary),
    Column("tag", String(20)),
)


@pytest.fixture(params=["sqlite", "postgresql"])
async def app_url(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str
) -> AsyncIterator[str]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}" if request.param == "sqlite" else pg_url
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        rows = [{"id": i, "org_id": 1 if i <= 7 else 2, "title": f"p{i}"} for i in range(1, 11)]
        await conn.execute(projects.insert(), rows)
        await conn.execute(
            notes.insert(),
            [
                {"project_id": p, "seq": s, "body": "é" * s, "blob": bytes([s]), "tag": None}
                for p in range(1, 11)
                for s in range(3)
            ],
        )
    yield url
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    await engine.dispose()


@pytest.fixture
async def stores(app_url: str, tmp_path: Path) -> AsyncIterator[TenantStores]:
    files = tmp_path / "files"
    for org, n in (("1", 3), ("2", 1)):
        (files / org / "img").mkdir(parents=True)
        for i in range(n):
            (files / org / "img" / f"{i}.png").write_bytes(b"x" * (i + 1))
    dm = parse_datamap(GOOD, "test.toml", {"APP_DATABASE_URL": app_url, "APP_FILES": str(files)})
    opened = await TenantStores.open(dm)
    yield opened
    await opened.close()


async def test_counts_select_only_the_tenant(stores: TenantStores) -> None:
    assert await stores.counts("1") == {
        "app.projects": {"rows": 7},
        "app.notes": {"rows": 21},
        "storage[0]": {"files": 3, "bytes": 6},
    }
    assert (await stores.counts("2"))["app.notes"] == {"rows": 9}
    # a key that cannot be an integer matches nothing instead of failing
    assert (await stores.counts("acme"))["app.projects"] == {"rows": 0}


async def test_keyset_pages_cover_every_row_once(stores: TenantStores) -> None:
    entry = stores.datamap.table("notes")
    seen, after = [], None
    while page := await stores.fetch_page(entry, "1", after, 4):
        seen += [(r["project_id"], r["seq"]) for r in page]
        after = (page[-1]["project_id"], page[-1]["seq"])
    assert seen == [(p, s) for p in range(1, 8) for s in range(3)]


async def test_batched_delete_children_first_leaves_others(stores: TenantStores) -> None:
    assert [e.name for e in stores.deletion_order()] == ["notes", "projects"]
    for entry in stores.deletion_order():
        while await stores.delete_batch(entry, "1", 5):
            pass
    counts = await stores.counts("1")
    assert counts["app.projects"]["rows"] == counts["app.notes"]["rows"] == 0
    assert (await stores.counts("2"))["app.notes"] == {"rows": 9}


async def test_unknown_table_and_column_named(app_url: str) -> None:
    env = {"APP_DATABASE_URL": app_url, "APP_FILES": "/tmp"}
    bad_table = GOOD.replace('name = "notes"', 'name = "nope"')
    with pytest.raises(ConfigError, match=r"tables\[1\] \(nope\): unknown table 'nope'"):
        await TenantStores.open(parse_datamap(bad_table, "t.toml", env))
    bad_col = GOOD.replace('tenant_column = "org_id"', 'tenant_column = "company"')
    with pytest.raises(ConfigError, match=r"tables\[0\] \(projects\): unknown column 'company'"):
        await TenantStores.open(parse_datamap(bad_col, "t.toml", env))
    bad_ref = GOOD.replace('references = "id"', 'references = "uuid"')
    with pytest.raises(ConfigError, match="unknown column 'uuid' in parent 'projects'"):
        await TenantStores.open(parse_datamap(bad_ref, "t.toml", env))
