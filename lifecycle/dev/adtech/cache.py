"""The sample application's Redis cache (when ``APP_REDIS_URL`` is set): what the application
caches per company, written from its database, and counted per company.

Keys, under ``adtech:<company id>:`` (the pattern of ``cache.toml``):
``summary`` (string: JSON counts of campaigns, ads, impressions and clicks; 1-day TTL),
``campaigns`` (hash: campaign id -> name) and ``recent-clicks`` (list: the latest 20 click ids).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from redis.asyncio import Redis
from sqlalchemy import select

from lifecycle.dev.adtech.counts import rows_by_company
from lifecycle.dev.adtech.schema import campaigns, clicks
from lifecycle.persistence.engine import create_engine

SUMMARY_TTL_SECONDS = 24 * 3600
RECENT_CLICKS = 20


def company_prefix(company_id: int | str) -> str:
    """``adtech:<company id>:``, the prefix of every cache key of one company."""
    return f"adtech:{company_id}:"


async def warm_cache(redis_url: str, database_url: str, company_ids: Iterable[int]) -> int:
    """Write each company's cache entries from the database (overwriting: idempotent);
    returns the number of keys written. Companies without rows get no keys."""
    ids = list(company_ids)
    rows = await rows_by_company(database_url, ids)
    engine = create_engine(database_url)
    redis = Redis.from_url(redis_url)
    written = 0
    try:
        async with engine.connect() as conn:
            for cid in ids:
                if not rows[cid]["companies"]:
                    continue
                prefix = company_prefix(cid)
                names = dict(
                    (
                        await conn.execute(
                            select(campaigns.c.id, campaigns.c.name).where(
                                campaigns.c.company_id == cid
                            )
                        )
                    ).all()
                )
                recent = (
                    await conn.scalars(
                        select(clicks.c.id)
                        .where(clicks.c.company_id == cid)
                        .order_by(clicks.c.id.desc())
                        .limit(RECENT_CLICKS)
                    )
                ).all()
                summary = {t: rows[cid][t] for t in ("campaigns", "ads", "impressions", "clicks")}
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.set(f"{prefix}summary", json.dumps(summary), ex=SUMMARY_TTL_SECONDS)
                    pipe.delete(f"{prefix}campaigns", f"{prefix}recent-clicks")
                    if names:
                        pipe.hset(
                            f"{prefix}campaigns", mapping={str(k): v for k, v in names.items()}
                        )
                    if recent:
                        pipe.rpush(f"{prefix}recent-clicks", *[str(c) for c in recent])
                    await pipe.execute()
                written += 1 + bool(names) + bool(recent)
    finally:
        await redis.aclose()
        await engine.dispose()
    return written


async def cache_entries(redis_url: str, tenant_keys: Iterable[str]) -> dict[str, int]:
    """``{tenant_key: keys}``: the company's cache entries (0 once purged)."""
    redis = Redis.from_url(redis_url)
    try:
        return {
            key: len([k async for k in redis.scan_iter(match=f"{company_prefix(key)}*")])
            for key in tenant_keys
        }
    finally:
        await redis.aclose()
