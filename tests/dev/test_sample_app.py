"""The sample ad-analytics application (lifecycle/dev/adtech): generator determinism, skew, size,
integrity and files on SQLite and PostgreSQL, S3 storage, ``load_sample`` and its data map."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import statistics
import tomllib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis
from sqlalchemy import func, inspect, select, text
from sqlalchemy.engine import make_url

from lifecycle.dev.adtech import DATAMAP_PATH
from lifecycle.dev.adtech.cache import cache_entries
from lifecycle.dev.adtech.counts import company_rows, rows_by_company, storage_usage
from lifecycle.dev.adtech.env import app_urls, sample_datamap
from lifecycle.dev.adtech.generate import generate
from lifecycle.dev.adtech.sample import load_sample
from lifecycle.dev.adtech.schema import TABLES, ad_variants, ads, clicks, create_schema, impressions
from lifecycle.dev.devserver import free_port
from lifecycle.domain.plans import load_plans, usage_violations
from lifecycle.domain.tenants import validate_tenant_id
from lifecycle.persistence.engine import create_engine
from lifecycle.storage.datamap import load_datamap
from lifecycle.storage.stores import TenantStores

DATAMAP = DATAMAP_PATH
SIZE_MB = 2.0


@pytest.fixture(params=["sqlite", "postgresql"])
async def new_database(
    request: pytest.FixtureRequest, tmp_path: Path, pg_url: str
) -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """A factory of fresh, empty application databases (URLs) on SQLite or PostgreSQL; the
    PostgreSQL ones are created next to the test database and dropped afterwards."""
    created: list[str] = []
    dsn = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    counter = itertools.count()

    async def make() -> str:
        if request.param == "sqlite":
            return f"sqlite+aiosqlite:///{tmp_path / f'app{next(counter)}.db'}"
        name = f"tl_app_{uuid.uuid4().hex[:10]}"
        conn = await asyncpg.connect(dsn)
        await conn.execute(f'CREATE DATABASE "{name}"')
        await conn.close()
        created.append(name)
        return make_url(pg_url).set(database=name).render_as_string(hide_password=False)

    yield make
    conn = await asyncpg.connect(dsn)
    for name in created:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def rows_checksum(url: str) -> str:
    """SHA-256 over every row of every table, in primary-key order."""
    digest = hashlib.sha256()
    engine = create_engine(url)
    async with engine.connect() as conn:
        for table in TABLES:
            for row in await conn.execute(select(table).order_by(*table.primary_key.columns)):
                digest.update(repr(tuple(row)).encode())
    await engine.dispose()
    return digest.hexdigest()


def files_checksum(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()


async def database_bytes(url: str) -> int:
    """On-disk size of the application's tables with their indexes."""
    if url.startswith("sqlite"):
        return Path(make_url(url).database).stat().st_size  # WAL checkpointed at close
    engine = create_engine(url)
    async with engine.connect() as conn:
        names = ", ".join(f"'{t.name}'" for t in TABLES)
        size = await conn.scalar(
            text(
                f"SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relname IN ({names})"
            )
        )
    await engine.dispose()
    return int(size)


async def test_generate_is_deterministic_skewed_and_sized(new_database, tmp_path: Path) -> None:
    runs = []
    for k, seed in enumerate((7, 7, 8)):
        url, root = await new_database(), tmp_path / f"files{k}"
        report = await generate(url, f"{root.as_uri()}/", tenants=9, size_mb=SIZE_MB, seed=seed)
        runs.append((url, root, report, await rows_checksum(url), files_checksum(root)))
    (url, root, report, rows_a, files_a), (_, _, report_b, rows_b, files_b) = runs[:2]
    assert (rows_a, files_a) == (rows_b, files_b)
    assert report == report_b
    assert runs[2][3] != rows_a and runs[2][4] != files_a  # another seed, other data

    sizes = sorted(c.bytes for c in report.companies.values())
    assert sizes[-1] >= 4 * statistics.median(sizes)

    file_bytes = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert file_bytes == sum(c.file_bytes for c in report.companies.values())
    on_disk = file_bytes + await database_bytes(url)
    assert 0.7 * SIZE_MB * 1e6 <= on_disk <= 1.3 * SIZE_MB * 1e6, on_disk


async def test_generated_data_is_consistent(new_database, tmp_path: Path) -> None:
    url, root = await new_database(), tmp_path / "files"
    storage_url = f"{root.as_uri()}/"
    report = await generate(url, storage_url, tenants=5, size_mb=1, seed=3)

    assert await rows_by_company(url) == {cid: c.rows for cid, c in report.companies.items()}
    usage = await storage_usage(storage_url, [str(cid) for cid in report.companies])
    assert usage == {str(cid): (c.files, c.file_bytes) for cid, c in report.companies.items()}

    engine = create_engine(url)
    async with engine.connect() as conn:
        for events in (clicks, impressions):  # every event's ad exists in the same company
            orphans = await conn.scalar(
                select(func.count())
                .select_from(
                    events.outerjoin(
                        ads,
                        (events.c.company_id == ads.c.company_id) & (events.c.ad_id == ads.c.id),
                    )
                )
                .where(ads.c.id.is_(None))
            )
            assert orphans == 0
        per_ad = {
            ad_id: (shown, clicked)
            for ad_id, shown, clicked in await conn.execute(
                select(ads.c.id, ads.c.impressions_count, ads.c.clicks_count)
            )
        }
        for events, slot in ((impressions, 0), (clicks, 1)):
            counted = dict(
                (await conn.execute(select(events.c.ad_id, func.count()).group_by("ad_id"))).all()
            )
            assert counted == {a: c[slot] for a, c in per_ad.items() if c[slot]}
        assert await conn.scalar(select(func.count()).select_from(ad_variants)) == sum(
            c.rows["ad_variants"] for c in report.companies.values()
        )
        image_urls = (await conn.execute(select(ads.c.company_id, ads.c.image_url))).all()
        # ads.id is unique across companies, so the ad_variants -> ads reference is unambiguous
        assert await conn.scalar(select(func.count(ads.c.id.distinct()))) == len(image_urls)
    await engine.dispose()

    for company_id, image_url in image_urls:
        assert image_url.startswith(f"{company_id}/ads/")
        data = (root / image_url).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
    for cid, counts in report.companies.items():  # the logo and one image per ad
        assert counts.files == 1 + counts.rows["ads"]
        assert (root / str(cid) / "logo.png").is_file()


async def test_generate_refuses_a_filled_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    storage_url = f"{(tmp_path / 'files').as_uri()}/"
    await generate(url, storage_url, tenants=2, size_mb=0.2, seed=1)
    await create_schema(url)  # idempotent
    with pytest.raises(ValueError, match="already holds 2 companies"):
        await generate(url, storage_url, tenants=2, size_mb=0.2, seed=1)
    with pytest.raises(ValueError, match="must end with '/'"):
        await generate(url, storage_url.rstrip("/"), tenants=2, size_mb=0.2, seed=1)


async def test_s3_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        for name, value in {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            monkeypatch.setenv(name, value)
        url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
        report = await generate(url, "s3://app-bucket/uploads/", tenants=3, size_mb=0.3, seed=2)
        usage = await storage_usage("s3://app-bucket/uploads/", ["1", "2", "3"])
        assert usage == {str(cid): (c.files, c.file_bytes) for cid, c in report.companies.items()}
    finally:
        server.stop()


async def test_load_sample_generates_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APP_DATABASE_URL", raising=False)
    monkeypatch.delenv("APP_STORAGE_URL", raising=False)
    data_dir = tmp_path / "data"
    first = await load_sample(data_dir, tenants=10, size_mb=1, seed=5)
    db_url = app_urls(data_dir)["APP_DATABASE_URL"]
    checksum = await rows_checksum(db_url)
    second = await load_sample(data_dir, tenants=4, size_mb=3, seed=6)
    assert second == first
    assert await rows_checksum(db_url) == checksum

    catalog = load_plans()
    assert [c.company_id for c in first] == list(range(1, 11))
    assert len({c.tenant_id for c in first}) == 10
    assert {c.plan for c in first} >= {"free", "enterprise"}
    for company in first:
        validate_tenant_id(company.tenant_id)
        assert company.data_key == str(company.company_id)
        assert company.rows == await company_rows(db_url, company.company_id)
        assert usage_violations(company.usage, catalog.get(company.plan).limits) == []
    largest = max(first, key=lambda c: c.bytes)
    assert largest.plan == "enterprise" and largest.usage["projects"] == largest.rows["campaigns"]


async def test_datamap_matches_the_schema(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    datamap = tomllib.loads(DATAMAP.read_text(encoding="utf-8"))
    assert datamap["databases"]["app"]["url"] == "${APP_DATABASE_URL}"
    assert [t["name"] for t in datamap["tables"]] == [t.name for t in TABLES]

    monkeypatch.delenv("APP_DATABASE_URL", raising=False)
    monkeypatch.setenv("APP_STORAGE_URL", f"{(tmp_path / 'uploads').as_uri()}/")
    urls = app_urls(tmp_path)
    await generate(urls["APP_DATABASE_URL"], urls["APP_STORAGE_URL"], tenants=2, size_mb=0.2)
    engine = create_engine(urls["APP_DATABASE_URL"])
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda sync: {
                t.name: {c["name"] for c in inspect(sync).get_columns(t.name)} for t in TABLES
            }
        )
    await engine.dispose()
    for entry in datamap["tables"]:
        assert entry["database"] == "app"
        if "parent" in entry:
            parent = entry["parent"]
            assert entry["name"] == "ad_variants" and "tenant_column" not in entry
            assert parent["column"] in columns[entry["name"]]
            assert parent["references"] in columns[parent["table"]]
        else:
            assert entry["tenant_column"] in columns[entry["name"]]

    # the purge's levels: the three children of ads at once, then each parent
    monkeypatch.setenv("APP_DATABASE_URL", urls["APP_DATABASE_URL"])
    stores = await TenantStores.open(load_datamap(DATAMAP))
    try:
        levels = [[e.name for e in level] for level in stores.deletion_levels()]
    finally:
        await stores.close()
    children = ["ad_variants", "clicks", "impressions"]
    assert levels == [children, ["ads"], ["campaigns"], ["companies"]]

    (storage,) = datamap["storage"]
    url = re.sub(r"\$\{(\w+)\}", lambda m: os.environ[m[1]], storage["url"])
    prefix = Path(url.format(tenant_key="2").removeprefix("file://"))
    assert (prefix / "logo.png").is_file() and prefix.parent == tmp_path / "uploads"


async def test_with_app_redis_url_the_sample_caches_and_its_map_lists_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    for var in ("APP_DATABASE_URL", "APP_STORAGE_URL"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("APP_REDIS_URL", redis_url)
    companies = await load_sample(tmp_path, tenants=3, size_mb=0.2, seed=2)
    keys = [c.data_key for c in companies]
    assert await cache_entries(redis_url, keys) == dict.fromkeys(keys, 3)
    redis = Redis.from_url(redis_url)
    summary = json.loads(await redis.get("adtech:1:summary"))
    assert summary["clicks"] == companies[0].rows["clicks"]
    assert 0 < await redis.ttl("adtech:1:summary") <= 24 * 3600
    await redis.aclose()

    path = sample_datamap(tmp_path)
    assert path == tmp_path / "datamap.toml"
    for var, value in app_urls(tmp_path).items():
        monkeypatch.setenv(var, value)
    dm = load_datamap(path)
    assert [t.name for t in dm.tables] == [t.name for t in TABLES]
    (cache,) = dm.cache
    assert cache.url == redis_url and cache.export and cache.patterns == ["adtech:{tenant_key}:*"]

    # the data map's cache store finds exactly the company's entries ("1" never matches "12")
    stores = await TenantStores.open(dm)
    try:
        assert (await stores.counts("1"))["cache[0]"] == {"keys": 3}
    finally:
        await stores.close()

    monkeypatch.setenv("APP_REDIS_URL", "")
    assert sample_datamap(tmp_path) == DATAMAP_PATH and "APP_REDIS_URL" not in app_urls(tmp_path)
