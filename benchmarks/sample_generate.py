"""Measure the sample application's generator: seconds and rows per second for a given size
on SQLite and, when reachable, PostgreSQL (a scratch database created and dropped).

    python benchmarks/sample_generate.py --size-mb 50 --tenants 20
    python benchmarks/sample_generate.py --size-mb 1000 --tenants 100 --pg-admin-url URL
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import typer
from sqlalchemy.engine import make_url

from lifecycle.dev.adtech.generate import generate


async def _run(database_url: str, root: Path, tenants: int, size_mb: float) -> str:
    t0 = time.monotonic()
    report = await generate(database_url, f"{root.as_uri()}/", tenants=tenants, size_mb=size_mb)
    seconds = time.monotonic() - t0
    return (
        f"{make_url(database_url).get_backend_name():<10} {size_mb:g} MB, {tenants} tenants: "
        f"{seconds:.1f} s, {report.rows} rows ({report.rows / seconds:,.0f} rows/s), "
        f"{report.files} files, {report.bytes / 1e6:.0f} MB"
    )


async def _main(size_mb: float, tenants: int, pg_admin_url: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        print(await _run(f"sqlite+aiosqlite:///{tmp}/app.db", Path(tmp, "s1"), tenants, size_mb))
        admin = make_url(pg_admin_url)
        dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
        name = f"bench_app_{uuid.uuid4().hex[:8]}"
        try:
            conn = await asyncpg.connect(dsn)
        except OSError as exc:
            print(f"postgresql skipped: {exc}")
            return
        await conn.execute(f'CREATE DATABASE "{name}"')
        try:
            url = admin.set(database=name).render_as_string(hide_password=False)
            print(await _run(url, Path(tmp, "s2"), tenants, size_mb))
        finally:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.close()


def main(
    size_mb: float = 50,
    tenants: int = 20,
    pg_admin_url: str = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
) -> None:
    asyncio.run(_main(size_mb, tenants, pg_admin_url))


if __name__ == "__main__":
    typer.run(main)
