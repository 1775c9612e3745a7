"""Purge throughput on PostgreSQL: the product's batched purge against one plain DELETE per
table, on identical copies of the sample application (lifecycle/dev/adtech).

    .venv/bin/python -m benchmarks.purge_throughput [--rows 1000000] [--tenants 10]

Creates a scratch database ``tl_bench_<random>`` on ``--pg-admin-url``, fills it with
``lifecycle.dev.adtech.generate`` sized so that the largest tenant holds about ``--rows`` rows,
clones it (``CREATE DATABASE ... TEMPLATE``: the same rows), then purges the largest tenant:

- product: ``TenantStores.purge_rows`` over ``deletion_order()`` (children first) with
  PURGE_BATCH_ROWS rows per transaction, as ``activities/purge.py`` does;
- baseline: one ``DELETE ... WHERE <tenant filter>`` per table, children first, each in its
  own transaction, on the clone.

Prints rows/s of both, their ratio, the longest single batch transaction (locks held) and the
other tenants' row counts before and after in both databases. Drops both databases at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy import delete
from sqlalchemy.engine import make_url

from benchmarks.harness import machine
from lifecycle.config import Settings
from lifecycle.dev.adtech import DATAMAP_PATH
from lifecycle.dev.adtech.generate import ROW_BYTES, generate, zipf_weights
from lifecycle.storage.datamap import load_datamap
from lifecycle.storage.stores import TenantStores

DATAMAP = DATAMAP_PATH
ROWS_SHARE = 0.75  # of the generator's bytes (the rest are image files)


def size_for(rows: int, tenants: int, seed: int) -> tuple[float, int]:
    """``(size_mb, tenant)``: the generator's size giving the largest tenant ~``rows`` rows."""
    weights = zipf_weights(tenants, seed)
    largest = max(range(tenants), key=weights.__getitem__)
    mean_row = sum(ROW_BYTES.values()) / len(ROW_BYTES)
    return rows * mean_row / ROWS_SHARE / weights[largest] / 1e6, largest + 1


async def counts(stores: TenantStores, tenants: int) -> dict[int, int]:
    """Rows per tenant over all mapped tables."""
    out = {}
    for cid in range(1, tenants + 1):
        per_store = await stores.counts(str(cid))
        out[cid] = sum(v.get("rows", 0) for k, v in per_store.items() if k.startswith("app."))
    return out


def open_stores(url: str, storage: Path) -> asyncio.Future[TenantStores]:
    environ = {**os.environ, "APP_DATABASE_URL": url, "APP_STORAGE_URL": f"{storage.as_uri()}/"}
    return TenantStores.open(load_datamap(DATAMAP, environ))  # type: ignore[return-value]


async def batched_purge(
    stores: TenantStores, key: str, batch: int, per_table: dict[str, str]
) -> tuple[int, float, float]:
    """``(rows, seconds, longest batch seconds)`` of the product's purge loop."""
    total, longest = 0, 0.0
    t0 = time.perf_counter()
    for entry in stores.deletion_order():
        b0 = time.perf_counter()
        rows, slowest = await stores.purge_rows(entry, key, batch)
        per_table[entry.name] = (
            f"{rows:,} rows {time.perf_counter() - b0:.2f} s (longest {slowest * 1000:.0f} ms)"
        )
        total, longest = total + rows, max(longest, slowest)
    return total, time.perf_counter() - t0, longest


async def plain_purge(
    stores: TenantStores, key: str, per_table: dict[str, str]
) -> tuple[int, float, float]:
    """``(rows, seconds, longest statement seconds)`` of one DELETE per table."""
    total, longest = 0, 0.0
    t0 = time.perf_counter()
    for entry in stores.deletion_order():
        statement = delete(stores.table(entry)).where(stores.tenant_filter(entry, key))
        b0 = time.perf_counter()
        async with stores.engines[entry.database].begin() as conn:
            rows = int((await conn.execute(statement)).rowcount or 0)
        elapsed = time.perf_counter() - b0
        per_table[entry.name] = f"{rows:,} rows {elapsed:.2f} s"
        total, longest = total + rows, max(longest, elapsed)
    return total, time.perf_counter() - t0, longest


async def main(args: argparse.Namespace) -> None:
    admin = make_url(args.pg_admin_url)
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    first, second = (f"tl_bench_{uuid.uuid4().hex[:8]}" for _ in range(2))
    url_of = {
        n: admin.set(database=n).render_as_string(hide_password=False) for n in (first, second)
    }
    size_mb, victim = size_for(args.rows, args.tenants, args.seed)
    batch = Settings(_env_file=None).purge_batch_rows  # type: ignore[call-arg]
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{first}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            report = await generate(
                url_of[first],
                f"{Path(tmp).as_uri()}/",
                tenants=args.tenants,
                size_mb=size_mb,
                seed=args.seed,
            )
            print(f"machine: {machine()}")
            print(
                f"generated {report.rows:,} rows for {args.tenants} tenants ({size_mb:.0f} MB "
                f"budget, seed {args.seed}) in {time.perf_counter() - t0:.0f} s; tenant "
                f"{victim} holds {sum(report.companies[victim].rows.values()):,} rows: "
                f"{report.companies[victim].rows}"
            )
            await conn.execute(f'CREATE DATABASE "{second}" TEMPLATE "{first}"')
            for name in (first, second):  # fresh statistics in both copies
                db = await asyncpg.connect(
                    admin.set(drivername="postgresql", database=name).render_as_string(
                        hide_password=False
                    )
                )
                await db.execute("VACUUM ANALYZE")
                await db.close()
            results = {}
            tables: dict[str, dict[str, str]] = {"batched": {}, "plain": {}}
            for name, label in ((first, "batched"), (second, "plain")):
                stores = await open_stores(url_of[name], Path(tmp))
                before = await counts(stores, args.tenants)
                if label == "batched":
                    results[label] = await batched_purge(stores, str(victim), batch, tables[label])
                else:
                    results[label] = await plain_purge(stores, str(victim), tables[label])
                after = await counts(stores, args.tenants)
                await stores.close()
                others_kept = all(after[c] == before[c] for c in before if c != victim)
                kept_before = sum(v for c, v in before.items() if c != victim)
                kept_after = sum(v for c, v in after.items() if c != victim)
                print(
                    f"{label:8s} other tenants' rows before {kept_before:,} after {kept_after:,} "
                    f"(untouched: {others_kept}); tenant {victim} left: {after[victim]}"
                )
        (rows_b, sec_b, longest_b), (rows_p, sec_p, longest_p) = (
            results["batched"],
            results["plain"],
        )
        print(
            f"\nbatched purge (purge_rows, at most {batch} rows per index batch): "
            f"{rows_b:,} rows in {sec_b:.1f} s = {rows_b / sec_b:,.0f} rows/s; "
            f"longest batch {longest_b * 1000:.0f} ms"
        )
        print(
            f"plain DELETE per table:                        {rows_p:,} rows in "
            f"{sec_p:.1f} s = {rows_p / sec_p:,.0f} rows/s; longest statement "
            f"{longest_p * 1000:.0f} ms"
        )
        for label, per_table in tables.items():
            print(f"{label:8s} " + "; ".join(f"{t} {v}" for t, v in per_table.items()))
        print(f"ratio batched / plain: {(rows_b / sec_b) / (rows_p / sec_p):.2f}")
    finally:
        for name in (first, second):
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the purged tenant")
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pg-admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    asyncio.run(main(parser.parse_args()))
