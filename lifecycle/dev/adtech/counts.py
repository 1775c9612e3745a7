"""Counting helpers (tests and the demo): rows per table for a company, objects and bytes under
a company's storage prefix. ``ad_variants`` are counted through their parent ``ads``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.sql import FromClause

from lifecycle.dev.adtech.schema import TABLES, ad_variants, ads, companies
from lifecycle.dev.adtech.storage import open_store
from lifecycle.persistence.engine import create_engine


def _count_queries() -> dict[str, Select[Any]]:
    """Per table: ``SELECT company_id, count(*) ... GROUP BY company_id``."""
    queries: dict[str, Select[Any]] = {}
    for table in TABLES:
        source: FromClause
        if table is companies:
            key, source = companies.c.id, companies
        elif table is ad_variants:
            key, source = ads.c.company_id, ad_variants.join(ads, ad_variants.c.ad_id == ads.c.id)
        else:
            key, source = table.c.company_id, table
        queries[table.name] = select(key, func.count()).select_from(source).group_by(key)
    return queries


async def rows_by_company(
    database_url: str, company_ids: Iterable[int] | None = None
) -> dict[int, dict[str, int]]:
    """``{company_id: {table: rows}}`` for ``company_ids`` (every table listed, 0 when none),
    or for every company with rows anywhere when ``company_ids`` is None."""
    wanted = None if company_ids is None else list(company_ids)
    found: dict[int, dict[str, int]] = {}
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            for name, query in _count_queries().items():
                if wanted is not None:
                    query = query.having(query.selected_columns[0].in_(wanted))
                for company_id, count in await conn.execute(query):
                    found.setdefault(company_id, {t.name: 0 for t in TABLES})[name] = count
    finally:
        await engine.dispose()
    for company_id in wanted or ():
        found.setdefault(company_id, {t.name: 0 for t in TABLES})
    return found


async def company_rows(database_url: str, company_id: int) -> dict[str, int]:
    """``{table: rows}`` of one company (zeros once purged)."""
    return (await rows_by_company(database_url, [company_id]))[company_id]


async def storage_usage(storage_url: str, tenant_keys: Iterable[str]) -> dict[str, tuple[int, int]]:
    """``{tenant_key: (objects, bytes)}`` under ``{storage_url}{tenant_key}/``."""
    async with open_store(storage_url) as store:
        return {key: await store.usage(f"{key}/") for key in tenant_keys}
