"""The sample application for the demo: ``load_sample`` makes sure it exists (schema, data for
N companies, generated once) and describes each company as a tenant to onboard."""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from lifecycle.dev.adtech.cache import warm_cache
from lifecycle.dev.adtech.counts import rows_by_company, storage_usage
from lifecycle.dev.adtech.env import app_urls
from lifecycle.dev.adtech.generate import ROW_BYTES, generate
from lifecycle.dev.adtech.schema import companies, create_schema
from lifecycle.domain.plans import UNLIMITED, PlanCatalog, load_plans
from lifecycle.persistence.engine import create_engine

# Size-rank quantiles separating the plans, highest plan first: the largest 10% of companies
# get the top plan, the next 20% the one below, the next 30% the next, the rest the lowest.
PLAN_CUTS = (0.1, 0.3, 0.6)


@dataclass(frozen=True)
class SampleCompany:
    """One company of the sample application, as a tenant to onboard.

    ``data_key`` is the company id as a string (the data map's tenant key); ``tenant_id`` a
    slug of the name; ``usage`` (``users``, ``projects``, ``storage_gb``) is derived from the
    company's data (users = 1 + ads / 10, projects = campaigns, storage_gb = ceil(bytes / 10**9))
    and capped at the limits of ``plan``, which is chosen by size rank; the smallest company of
    each plan (when the plan has two or more) is capped at the plan below instead.
    """

    company_id: int
    data_key: str
    tenant_id: str
    name: str
    email: str
    plan: str
    usage: dict[str, int]
    rows: dict[str, int]
    files: int
    bytes: int


async def load_sample(
    data_dir: Path = Path(".data"),
    *,
    tenants: int = 12,
    size_mb: float = 50,
    seed: int = 0,
    plans: PlanCatalog | None = None,
) -> list[SampleCompany]:
    """Ensure the application's schema and data exist, then describe its companies.

    Uses ``APP_DATABASE_URL``/``APP_STORAGE_URL`` or their defaults under ``data_dir``
    (:func:`lifecycle.dev.adtech.env.app_urls`). Generates ``tenants`` companies of
    ``size_mb`` MB in all from ``seed`` only when the application holds no company: a second
    call (same ``data_dir``) changes nothing and returns the same list. Companies are ordered by id.
    With ``APP_REDIS_URL`` set, (re)writes each company's cache entries (``adtech.cache``).
    """
    urls = app_urls(data_dir)
    database_url, storage_url = urls["APP_DATABASE_URL"], urls["APP_STORAGE_URL"]
    await create_schema(database_url)
    names = await _company_names(database_url)
    if not names:
        await generate(database_url, storage_url, tenants=tenants, size_mb=size_mb, seed=seed)
        names = await _company_names(database_url)
    if "APP_REDIS_URL" in urls:
        await warm_cache(urls["APP_REDIS_URL"], database_url, names)
    rows = await rows_by_company(database_url, names)
    files = await storage_usage(storage_url, [str(cid) for cid in names])
    size = {
        cid: files[str(cid)][1] + sum(ROW_BYTES[t] * n for t, n in rows[cid].items())
        for cid in names
    }
    catalog = plans or load_plans()
    by_size = sorted(names, key=lambda cid: (-size[cid], cid))
    tiers = {cid: bisect.bisect_right(PLAN_CUTS, by_size.index(cid) / len(names)) for cid in names}
    # the smallest company of a tier (of two or more) has shrunk to fit one plan lower, so
    # that a downgrade at the period end can happen on the first run of the main job
    shrunk = {
        max((c for c in names if tiers[c] == tier), key=by_size.index)
        for tier in set(tiers.values())
        if sum(t == tier for t in tiers.values()) > 1
    }
    out = []
    for cid, name in names.items():
        rank = max(0, len(catalog.plans) - 1 - tiers[cid])
        plan = catalog.plans[rank]
        wanted = {
            "users": 1 + rows[cid]["ads"] // 10,
            "projects": rows[cid]["campaigns"],
            "storage_gb": max(1, math.ceil(size[cid] / 1e9)),
        }
        cap = catalog.plans[rank - 1] if cid in shrunk and rank > 0 else plan
        limits = cap.limits.as_dict()
        usage = {r: n if limits[r] == UNLIMITED else min(n, limits[r]) for r, n in wanted.items()}
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        out.append(
            SampleCompany(
                company_id=cid,
                data_key=str(cid),
                tenant_id=slug,
                name=name,
                email=f"billing@{slug}.example",
                plan=plan.name,
                usage=usage,
                rows=rows[cid],
                files=files[str(cid)][0],
                bytes=size[cid],
            )
        )
    return out


async def _company_names(database_url: str) -> dict[int, str]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            result = await conn.execute(select(companies.c.id, companies.c.name).order_by("id"))
            return dict(result.all())
    finally:
        await engine.dispose()
