"""Purge throughput on PostgreSQL: the product's batched purge against one plain DELETE per
table, on identical copies of the sample application (lifecycle/dev/adtech).

    .venv/bin/python -m benchmarks.purge_throughput [--rows 1000000] [--tenants 10]

Creates a scratch database ``tl_bench_<random>`` on ``--pg-admin-url``, fills it with
``lifecycle.dev.adtech.generate`` sized so that the largest tenant holds about ``--rows`` rows,
clones it once per purge (``CREATE DATABASE ... TEMPLATE``: the same rows), runs ``VACUUM
ANALYZE`` in every copy and one ``CHECKPOINT``, then purges the largest tenant:

- product: ``TenantStores.purge_rows`` over ``deletion_levels()`` (children first, the tables
  of one level at once), batch sizes following the transaction time (at most
  PURGE_BATCH_ROWS rows per index batch), as the deletion workflow's ``purge_store``
  activities do;
- baseline: one ``DELETE ... WHERE <tenant filter>`` per table, children first, each in its
  own transaction, on the clone.

``--rounds`` rounds (default 2), each on two fresh copies, alternating which purge goes first
(this machine's speed drifts within minutes). Prints rows/s of both per round and over all,
the ratio over the summed times, the product's batches (p50 and p99 of the times between two
reports of ``purge_rows``, which include the read-only find of a batch after a sweep, and how
many took 250 ms or more; longest: the longest time a batch held row locks, ``purge_rows``'
own figure), per-table times, and the other tenants' row counts before and after in every
database. Drops every database at the end.
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
from lifecycle.storage.datamap import TableEntry, load_datamap
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
    stores: TenantStores,
    key: str,
    batch: int,
    per_table: dict[str, str],
    batches: list[float],
    one_at_a_time: bool = False,
) -> tuple[int, float, float]:
    """``(rows, seconds, longest batch seconds)`` of the product's purge loop; ``batches``
    gets every batch's seconds (the time between two reports of ``purge_rows``)."""

    async def purge(entry: TableEntry) -> tuple[int, float]:
        b0 = last = time.perf_counter()

        def report(_: int) -> None:
            nonlocal last
            now = time.perf_counter()
            batches.append(now - last)
            last = now

        rows, slowest = await stores.purge_rows(entry, key, batch, report)
        per_table[entry.name] = (
            f"{rows:,} rows {time.perf_counter() - b0:.2f} s (longest {slowest * 1000:.0f} ms)"
        )
        return rows, slowest

    total, longest = 0, 0.0
    t0 = time.perf_counter()
    levels = stores.deletion_levels()
    if one_at_a_time:
        levels = [[entry] for level in levels for entry in level]
    for level in levels:
        for rows, slowest in await asyncio.gather(*(purge(entry) for entry in level)):
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
    # round r purges copy 2r with the product and copy 2r+1 plainly; the order alternates
    names = [f"tl_bench_{uuid.uuid4().hex[:8]}" for _ in range(2 * args.rounds)]
    url_of = {n: admin.set(database=n).render_as_string(hide_password=False) for n in names}
    size_mb, victim = size_for(args.rows, args.tenants, args.seed)
    batch = Settings(_env_file=None).purge_batch_rows  # type: ignore[call-arg]
    conn = await asyncpg.connect(dsn)
    await conn.execute(f'CREATE DATABASE "{names[0]}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            report = await generate(
                url_of[names[0]],
                f"{Path(tmp).as_uri()}/",
                tenants=args.tenants,
                size_mb=size_mb,
                seed=args.seed,
            )
            print(f"machine: {machine()}; load average {os.getloadavg()}")
            print(
                f"generated {report.rows:,} rows for {args.tenants} tenants ({size_mb:.0f} MB "
                f"budget, seed {args.seed}) in {time.perf_counter() - t0:.0f} s; tenant "
                f"{victim} holds {sum(report.companies[victim].rows.values()):,} rows: "
                f"{report.companies[victim].rows}"
            )
            for name in names[1:]:
                await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{names[0]}"')
            for name in names:  # fresh statistics in every copy
                db = await asyncpg.connect(
                    admin.set(drivername="postgresql", database=name).render_as_string(
                        hide_password=False
                    )
                )
                await db.execute("VACUUM ANALYZE")
                await db.close()
            # the copies wrote their pages to the WAL, which starts checkpoints: finish them
            # now, or the first round's first purge runs beside the checkpoint's writes
            await conn.execute("CHECKPOINT")
            totals = {"batched": [0, 0.0, 0.0], "plain": [0, 0.0, 0.0]}
            batches: list[float] = []
            for r in range(args.rounds):
                order = [("batched", names[2 * r]), ("plain", names[2 * r + 1])]
                for label, name in order if r % 2 == 0 else order[::-1]:
                    per_table: dict[str, str] = {}
                    stores = await open_stores(url_of[name], Path(tmp))
                    before = await counts(stores, args.tenants)
                    if label == "batched":
                        rows, sec, longest = await batched_purge(
                            stores, str(victim), batch, per_table, batches, args.one_at_a_time
                        )
                    else:
                        rows, sec, longest = await plain_purge(stores, str(victim), per_table)
                    after = await counts(stores, args.tenants)
                    await stores.close()
                    others_kept = all(after[c] == before[c] for c in before if c != victim)
                    total = totals[label]
                    total[0], total[1] = int(total[0]) + rows, total[1] + sec
                    total[2] = max(total[2], longest)
                    print(
                        f"round {r + 1} {label:7s}: {rows:,} rows in {sec:.2f} s = "
                        f"{rows / sec:,.0f} rows/s, longest write transaction "
                        f"{longest * 1000:.0f} ms; "
                        f"other tenants untouched: {others_kept}, tenant {victim} left: "
                        f"{after[victim]}; load average {os.getloadavg()[0]:.1f}"
                    )
                    print("    " + "; ".join(f"{t} {v}" for t, v in per_table.items()))
        (rows_b, sec_b, longest_b), (rows_p, sec_p, longest_p) = (
            totals["batched"],
            totals["plain"],
        )
        ordered = sorted(batches)
        over = sum(1 for b in batches if b >= 0.25)
        print(
            f"\nbatched purge (purge_rows, at most {batch} rows per index batch), all rounds: "
            f"{rows_b:,} rows in {sec_b:.1f} s = {rows_b / sec_b:,.0f} rows/s; "
            f"{len(batches)} batches, p50 {ordered[len(ordered) // 2] * 1000:.0f} ms, "
            f"p99 {ordered[int(len(ordered) * 0.99)] * 1000:.0f} ms, {over} at 250 ms or more; "
            f"longest write transaction {longest_b * 1000:.0f} ms"
        )
        print(
            f"plain DELETE per table, all rounds: {rows_p:,} rows in {sec_p:.1f} s = "
            f"{rows_p / sec_p:,.0f} rows/s; longest statement {longest_p * 1000:.0f} ms"
        )
        print(f"ratio batched / plain over the summed times: {sec_p / sec_b:.2f}")
    finally:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the purged tenant")
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds")
    parser.add_argument(
        "--one-at-a-time",
        action="store_true",
        help="purge the tables one after the other (as before the parallel-purge patch)",
    )
    parser.add_argument(
        "--pg-admin-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    )
    asyncio.run(main(parser.parse_args()))
