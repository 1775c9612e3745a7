"""The data map's live stores on SQLite and PostgreSQL (tenant filters in the column's own
type, parents, keyset pages, batched deletes); file validation: tests/unit/test_datamap.py."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)
from sqlalchemy.ext.asyncio import AsyncEngine

from lifecycle.domain.errors import ConfigError
from lifecycle.persistence.engine import create_engine
from lifecycle.storage.datamap import parse_datamap
from lifecycle.storage.stores import SWEEP_MIN_BLOCKS, TenantStores
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


async def test_split_keys_bound_ranges_that_pages_fill_exactly(stores: TenantStores) -> None:
    """The export's part bounds: every 5th key of the tenant's 21 notes (two-column key,
    tenant through the parent), the pages of each range (after, until] rebuild the table."""
    entry = stores.datamap.table("notes")
    beats: list[int] = []
    bounds = await stores.split_keys(entry, "1", 5, beats.append)
    assert bounds == [[2, 1], [4, 0], [5, 2], [7, 1]]  # rows 5, 10, 15, 20; 21 is the last
    assert beats == [1, 2, 3, 4]  # the plan heartbeats once per bound
    seen = []
    for after, until in zip([None, *bounds], [*bounds, None], strict=True):
        seen.append(await stores.fetch_page(entry, "1", after, 100, until))
    assert [len(p) for p in seen] == [5, 5, 5, 5, 1]
    assert [(r["project_id"], r["seq"]) for p in seen for r in p] == [
        (p, s) for p in range(1, 8) for s in range(3)
    ]
    assert await stores.split_keys(entry, "1", 21) == []  # one range holds them all
    assert await stores.split_keys(entry, "acme", 1) == []  # no rows
    with pytest.raises(ValueError, match="every must be >= 1"):
        await stores.split_keys(entry, "1", 0)


async def test_batched_delete_children_first_leaves_others(stores: TenantStores) -> None:
    assert [e.name for e in stores.deletion_order()] == ["notes", "projects"]
    for entry in stores.deletion_order():
        last = False
        while not last:
            _, last = await stores.delete_batch(entry, "1", 5)
    counts = await stores.counts("1")
    assert counts["app.projects"]["rows"] == counts["app.notes"]["rows"] == 0
    assert (await stores.counts("2"))["app.notes"] == {"rows": 9}


async def test_a_key_the_column_cannot_hold_purges_nothing(stores: TenantStores) -> None:
    """A data key that does not convert to the tenant column's type ("acme" against an
    integer column) selects no row: the purge deletes nothing and raises nothing."""
    for entry in stores.deletion_order():
        deleted, _ = await stores.purge_rows(entry, "acme", 5)
        assert deleted == 0
    assert (await stores.counts("1"))["app.projects"] == {"rows": 7}


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


extra = MetaData()
audit_log = Table(  # the tenant column, outside the map
    "audit_log", extra, Column("id", Integer, primary_key=True), Column("org_id", Integer)
)
attachments = Table(  # no tenant column, but a foreign key into a mapped table
    "attachments",
    extra,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey(projects.c.id)),
)
org_stats = Table(  # knowingly left out, with a reason
    "org_stats", extra, Column("id", Integer, primary_key=True), Column("org_id", Integer)
)
unrelated = Table("unrelated", extra, Column("id", Integer, primary_key=True))


async def test_discovery_flags_unmapped_tenant_tables_and_counts_them(
    app_url: str, tmp_path: Path
) -> None:
    engine = create_engine(app_url)
    async with engine.begin() as conn:
        await conn.run_sync(extra.drop_all)
        await conn.run_sync(extra.create_all)
        await conn.execute(audit_log.insert(), [{"id": i, "org_id": 1 + i % 2} for i in range(6)])
        await conn.execute(attachments.insert(), [{"id": i, "project_id": i} for i in (1, 2, 9)])
        await conn.execute(org_stats.insert(), [{"id": 1, "org_id": 1}])
    text = GOOD + (
        '\n[[ignore]]\ndatabase = "app"\nname = "org_stats"\nreason = "aggregates, no personal '
        'data"\n'
    )
    env = {"APP_DATABASE_URL": app_url, "APP_FILES": str(tmp_path)}
    stores = await TenantStores.open(parse_datamap(text, "t.toml", env))
    try:
        found = {u.store: u.why for u in await stores.discover()}
        assert found == {
            "app.audit_log": "tenant column 'org_id'",
            "app.attachments": "foreign key project_id -> projects.id",
        }
        counts = await stores.counts("1")
        assert counts["app.audit_log"] == {"rows": 3}
        assert counts["app.attachments"] == {"rows": 2}  # projects 1 and 2 belong to org 1
        assert "app.org_stats" not in counts and "app.unrelated" not in counts
        assert [u.store for u in stores.referencing(stores.datamap.table("projects"))] == [
            "app.attachments"
        ]
        # the certificate's coverage: every store checked, and the ignored table's reason
        from lifecycle.storage.datamap import coverage

        assert coverage(stores.datamap, [*counts, "exports"]) == [
            {"store": "app.attachments", "kind": "unmapped table"},
            {"store": "app.audit_log", "kind": "unmapped table"},
            {"store": "app.notes", "kind": "mapped table"},
            {"store": "app.projects", "kind": "mapped table"},
            {"store": "exports", "kind": "exports"},
            {"store": "storage[0]", "kind": "storage"},
            {
                "store": "app.org_stats",
                "kind": "ignored table",
                "reason": "aggregates, no personal data",
            },
        ]
    finally:
        await stores.close()
        async with engine.begin() as conn:
            await conn.run_sync(extra.drop_all)
        await engine.dispose()


def test_tenant_columns_and_ignore_are_validated() -> None:
    env = {"APP_DATABASE_URL": "sqlite+aiosqlite://", "APP_FILES": "/tmp"}
    dm = parse_datamap(
        GOOD.replace("[databases.app]", 'tenant_columns = ["org_id", "tenant"]\n[databases.app]'),
        "t.toml",
        env,
    )
    assert dm.tenant_column_names() == {"org_id", "tenant"}
    assert parse_datamap(GOOD, "t.toml", env).tenant_column_names() == {"org_id"}
    ignored_mapped = GOOD + '[[ignore]]\ndatabase = "app"\nname = "projects"\nreason = "x"\n'
    with pytest.raises(ConfigError, match="is mapped; it cannot be ignored"):
        parse_datamap(ignored_mapped, "t.toml", env)
    no_reason = GOOD + '[[ignore]]\ndatabase = "app"\nname = "stats"\n'
    with pytest.raises(ConfigError, match="reason"):
        parse_datamap(no_reason, "t.toml", env)


@pytest.fixture
async def pg_app(pg_url: str) -> AsyncIterator[tuple[AsyncEngine, TenantStores]]:
    """PostgreSQL alone: the tables created empty and the stores open on them, both dropped
    after the test."""
    engine = create_engine(pg_url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
    env = {"APP_DATABASE_URL": pg_url, "APP_FILES": "/tmp"}
    stores = await TenantStores.open(parse_datamap(GOOD, "t.toml", env))
    yield engine, stores
    await stores.close()
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
    await engine.dispose()


async def test_large_share_of_a_big_table_is_swept_by_block_ranges(
    pg_app: tuple[AsyncEngine, TenantStores],
) -> None:
    """PostgreSQL: a tenant with most of a table of more than SWEEP_MIN_BLOCKS blocks is
    purged by block ranges (then by index batches for anything left), every one of its rows
    and only those; each batch is reported."""
    engine, stores = pg_app
    async with engine.begin() as conn:
        rows = [{"id": i, "org_id": 1 if i % 20 else 2, "title": "x" * 300} for i in range(30_000)]
        await conn.execute(projects.insert(), rows)
        await conn.execute(text("ANALYZE projects"))
    entry = stores.datamap.table("projects")
    async with stores.engines["app"].connect() as conn:
        # purges do not wait for their commits' WAL flush (a lost batch is redone)
        assert await conn.scalar(text("SHOW synchronous_commit")) == "off"
        ranges = await stores._sweep_ranges(conn, entry, "1")
        assert await stores._sweep_ranges(conn, entry, "2") == []  # 5%: it pays from 10%
    (first, end), (start, stop) = ranges  # the tenant's rows are everywhere: all blocks
    assert start == 0 and stop == first and end >= SWEEP_MIN_BLOCKS
    progress: list[int] = []
    deleted, longest = await stores.purge_rows(entry, "1", 500, progress.append)
    assert deleted == 28_500 == progress[-1] and len(progress) > 1 and longest > 0
    assert progress == sorted(progress)
    assert (await stores.counts("2"))["app.projects"] == {"rows": 1_500}
    assert (await stores.counts("1"))["app.projects"] == {"rows": 0}


async def test_rows_a_sweep_misses_are_deleted_by_the_index_batches(
    pg_app: tuple[AsyncEngine, TenantStores], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the sweep covers the blocks a random sample found holding the tenant's
    rows; rows outside them (a sample that missed the ends, rows moved meanwhile) are
    deleted by the index batches that follow. Here the sweep is made to cover only the
    middle of the tenant's blocks."""
    engine, stores = pg_app
    async with engine.begin() as conn:
        rows = [
            {"id": i, "org_id": 1 if 5_000 <= i < 25_000 else 2, "title": "x" * 300}
            for i in range(30_000)
        ]
        await conn.execute(projects.insert(), rows)
        first, last = (
            await conn.execute(text("SELECT min(ctid), max(ctid) FROM projects WHERE org_id = 1"))
        ).one()
    middle = (first[0] + last[0]) // 2

    async def middle_only(*_: object) -> list[tuple[int, int]]:
        return [(middle - 50, middle + 50)]

    monkeypatch.setattr(stores, "_sweep_ranges", middle_only)
    deleted, _ = await stores.purge_rows(stores.datamap.table("projects"), "1", 1_000)
    assert deleted == 20_000
    assert (await stores.counts("1"))["app.projects"] == {"rows": 0}
    assert (await stores.counts("2"))["app.projects"] == {"rows": 10_000}


@pytest.mark.parametrize("after_sweep", [False, True], ids=["one-statement", "find-then-delete"])
async def test_a_row_moved_by_a_concurrent_update_ends_no_batch(
    pg_app: tuple[AsyncEngine, TenantStores], after_sweep: bool
) -> None:
    """PostgreSQL: a batch deletes the rows it found by their addresses (in one statement,
    or after a sweep in a read-only scan and then a transaction). A row another transaction
    updates between the two has a new address and is not deleted, so that batch is not the
    last and the next one deletes it. A batch that finds fewer rows than its size and
    deletes every one is the last; a full batch is not."""
    engine, stores = pg_app
    async with engine.begin() as conn:
        rows = [{"id": i, "org_id": 1 if i <= 6 else 2, "title": "x"} for i in range(1, 10)]
        await conn.execute(projects.insert(), rows)
    entry = stores.datamap.table("projects")
    assert await stores.delete_batch(entry, "1", 1, after_sweep) == (1, False)  # full
    async with engine.connect() as other, engine.connect() as watcher:
        await other.execute(text("UPDATE projects SET title = 'moved' WHERE id = 4"))
        batch = asyncio.create_task(stores.delete_batch(entry, "1", 100, after_sweep))
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        for _ in range(200):  # the batch waits for the updated row's lock
            if await watcher.scalar(waiting):
                break
            await watcher.rollback()
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the batch never waited for the updated row")
        await other.commit()
    assert await batch == (4, False)  # found 5, deleted 4: row 4 moved
    assert await stores.delete_batch(entry, "1", 100, after_sweep) == (1, True)
    assert (await stores.counts("1"))["app.projects"] == {"rows": 0}
    assert (await stores.counts("2"))["app.projects"] == {"rows": 3}


@pytest.mark.parametrize("rows", [2_000, 30_000], ids=["index-batches", "swept"])
async def test_a_row_a_trigger_keeps_ends_the_purge_and_stays(
    pg_app: tuple[AsyncEngine, TenantStores], rows: int
) -> None:
    """PostgreSQL: a row the application's BEFORE DELETE trigger keeps (a hold of its own) is
    found but never deleted. The batch that finds it is not the last; the purge then deletes
    by primary key until a batch deletes nothing, and returns; the row stays for the
    verification to name."""
    engine, stores = pg_app
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE FUNCTION keep_held() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "IF OLD.title = 'held' THEN RETURN NULL; END IF; RETURN OLD; END $$"
            )
        )
        await conn.execute(
            text(
                "CREATE TRIGGER keep_held BEFORE DELETE ON projects "
                "FOR EACH ROW EXECUTE FUNCTION keep_held()"
            )
        )
        await conn.execute(
            projects.insert(),
            [{"id": i, "org_id": 1 if i % 20 else 2, "title": "x" * 300} for i in range(rows)],
        )
        await conn.execute(text("UPDATE projects SET title = 'held' WHERE id = 1"))
        await conn.execute(text("ANALYZE projects"))
    try:
        entry = stores.datamap.table("projects")
        deleted, _ = await asyncio.wait_for(stores.purge_rows(entry, "1", 500), 60)
        assert deleted == rows - rows // 20 - 1
        assert (await stores.counts("1"))["app.projects"] == {"rows": 1}
        assert (await stores.counts("2"))["app.projects"] == {"rows": rows // 20}
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP FUNCTION keep_held() CASCADE"))


async def test_a_row_updated_all_along_does_not_stall_the_purge_after_a_sweep(
    pg_app: tuple[AsyncEngine, TenantStores],
) -> None:
    """PostgreSQL: another session updates one of the tenant's rows in a loop during a purge
    that sweeps. Found in one transaction and deleted in the next, the row has moved each
    time; after such a shortfall the batches delete by primary key, which follows the row to
    its new version, and the purge ends with the row deleted."""
    engine, stores = pg_app
    async with engine.begin() as conn:
        await conn.execute(
            projects.insert(),
            [{"id": i, "org_id": 1 if i % 20 else 2, "title": "x" * 300} for i in range(30_000)],
        )
        await conn.execute(text("ANALYZE projects"))
    done = asyncio.Event()

    async def update_all_along() -> int:
        updates = 0
        async with engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            while not done.is_set():
                await conn.execute(text("UPDATE projects SET title = title WHERE id = 1"))
                updates += 1
        return updates

    updater = asyncio.create_task(update_all_along())
    try:
        entry = stores.datamap.table("projects")
        deleted, _ = await asyncio.wait_for(stores.purge_rows(entry, "1", 500), 60)
    finally:
        done.set()
        updates = await updater
    assert updates > 0 and deleted == 28_500
    assert (await stores.counts("1"))["app.projects"] == {"rows": 0}
    assert (await stores.counts("2"))["app.projects"] == {"rows": 1_500}


async def test_a_partitioned_tables_purge_keeps_other_tenants_rows(pg_url: str) -> None:
    """PostgreSQL: in a partitioned table a row address is unique only within a partition, so
    a batch deleting by address also checks the tenant: another tenant's row at the same
    address in another partition stays."""
    engine = create_engine(pg_url)
    datamap = (
        '[databases.app]\nurl = "${APP_DATABASE_URL}"\n\n'
        '[[tables]]\ndatabase = "app"\nname = "events"\ntenant_column = "org_id"\n'
    )
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS events"))
        await conn.execute(
            text("CREATE TABLE events (id int PRIMARY KEY, org_id int) PARTITION BY HASH (id)")
        )
        for remainder in (0, 1):
            await conn.execute(
                text(
                    f"CREATE TABLE events_{remainder} PARTITION OF events "
                    f"FOR VALUES WITH (MODULUS 2, REMAINDER {remainder})"
                )
            )
        await conn.execute(
            text("INSERT INTO events SELECT i, 1 + i % 2 FROM generate_series(1, 100) i")
        )
    stores = await TenantStores.open(parse_datamap(datamap, "t.toml", {"APP_DATABASE_URL": pg_url}))
    try:
        entry = stores.datamap.table("events")
        assert (await stores.purge_rows(entry, "1", 1_000))[0] == 50
        assert (await stores.counts("1"))["app.events"] == {"rows": 0}
        assert (await stores.counts("2"))["app.events"] == {"rows": 50}
    finally:
        await stores.close()
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE events"))
        await engine.dispose()


async def test_reflection_is_reused_until_the_schema_changes(app_url: str, tmp_path: Path) -> None:
    """The stores reflect a database once per schema (every activity opens them afresh): a
    second open reuses the tables; a column added or a new tenant table created afterwards
    is seen by the next open (its rows are exported and discovery flags the table)."""
    dm = parse_datamap(GOOD, "t.toml", {"APP_DATABASE_URL": app_url, "APP_FILES": str(tmp_path)})
    entry = dm.table("notes")
    first = await TenantStores.open(dm)
    second = await TenantStores.open(dm)
    try:
        assert second.table(entry) is first.table(entry)
        assert "extra" not in first.table(entry).c
    finally:
        await first.close()
        await second.close()
    engine = create_engine(app_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("ALTER TABLE notes ADD COLUMN extra VARCHAR(10)"))
            await conn.execute(text("UPDATE notes SET extra = 'new'"))
            await conn.execute(text("CREATE TABLE audit (id INTEGER PRIMARY KEY, org_id INTEGER)"))
            await conn.execute(text("INSERT INTO audit VALUES (1, 1)"))
        changed = await TenantStores.open(dm)
        try:
            assert changed.table(entry) is not first.table(entry)
            page = await changed.fetch_page(entry, "1", None, 5)
            assert page and all(row["extra"] == "new" for row in page)
            found = await changed.discover()
            assert [(u.name, u.column) for u in found] == [("audit", "org_id")]
        finally:
            await changed.close()
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE audit"))
        await engine.dispose()
