"""Purge throughput of one table: rows deleted per second by ``TenantStores.delete_batch``
loops (the purge's inner loop) for several batch sizes, on SQLite or PostgreSQL.

    .venv/bin/python benchmarks/purge_batches.py [--rows 100000] [--url postgresql+asyncpg://...]

Two tenants hold ``--rows`` rows each; one is purged, the other must keep all of its rows.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from lifecycle.persistence.engine import create_engine
from lifecycle.storage.datamap import parse_datamap
from lifecycle.storage.stores import TenantStores

MAP = """
[databases.app]
url = "{url}"

[[tables]]
database = "app"
name = "bench_rows"
tenant_column = "tenant"
"""

metadata = MetaData()
rows = Table(
    "bench_rows",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(32), nullable=False, index=True),
    Column("body", String(200)),
)


async def run(url: str, n: int, batch: int) -> float:
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        for tenant, offset in (("victim", 0), ("keeper", n)):
            for start in range(0, n, 10_000):
                await conn.execute(
                    rows.insert(),
                    [
                        {"id": offset + i, "tenant": tenant, "body": "x" * 100}
                        for i in range(start, min(n, start + 10_000))
                    ],
                )
    stores = await TenantStores.open(parse_datamap(MAP.format(url=url)))
    entry = stores.datamap.tables[0]
    t0 = time.perf_counter()
    last = False
    while not last:
        _, last = await stores.delete_batch(entry, "victim", batch)
    seconds = time.perf_counter() - t0
    await stores.close()
    async with engine.connect() as conn:
        kept = await conn.scalar(select(func.count()).select_from(rows))
        await conn.run_sync(metadata.drop_all)
    await engine.dispose()
    assert kept == n, f"the other tenant lost rows: {kept} != {n}"
    return n / seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--url", default=None, help="SQLAlchemy async URL (default: SQLite)")
    args = parser.parse_args()
    url = args.url or f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
    for batch in (100, 1000, 10_000):
        rate = await run(url, args.rows, batch)
        print(f"{url.split(':')[0]:<20} rows={args.rows} batch={batch:<6} {rate:>10.0f} rows/s")


if __name__ == "__main__":
    asyncio.run(main())
