"""Deterministic data generator for the ad-analytics sample application.

``generate(...)`` fills an empty application database and its object storage for N companies
(tenants) whose sizes follow a Zipf law (rank r gets weight 1/r**1.1: a few large tenants, many
small), about ``size_mb`` megabytes in all: a quarter in ad images (valid PNGs), the rest in
rows, mostly impressions and clicks. The same seed gives the same rows and files, byte for
byte. Rows are generated lazily and inserted in batches of ``BATCH_ROWS`` (executemany), so
memory stays bounded whatever the size; the database side is one transaction.

CLI: ``python -m lifecycle.dev.adtech.generate --tenants 20 --size-mb 50 --seed 7``.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import random
import re
import struct
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from lifecycle.dev.adtech.env import app_urls
from lifecycle.dev.adtech.schema import (
    TABLES,
    ad_variants,
    ads,
    campaigns,
    clicks,
    companies,
    create_schema,
    impressions,
)
from lifecycle.dev.adtech.storage import ObjectStore, open_store
from lifecycle.persistence.engine import create_engine

ZIPF_EXPONENT = 1.1
FILE_SHARE = 0.25  # of each company's bytes in ad images; the rest in rows
BATCH_ROWS = 5_000
FILE_BATCH = 64
BASE_TIME = datetime(2024, 1, 1, tzinfo=UTC)
# Bytes a row takes on disk with its share of indexes: the mean of SQLite and PostgreSQL,
# measured with this generator's data; used to size the rows part of the budget.
ROW_BYTES = {
    "companies": 150,
    "campaigns": 260,
    "ads": 330,
    "ad_variants": 160,
    "impressions": 230,
    "clicks": 230,
}

_ADJECTIVES = (
    "Bright Blue Crimson Golden Silver Quiet Rapid Northern Urban Lunar Solar Coastal Iron Maple "
    "Cedar Nimble Bold Clever Velvet Amber Polar Summit Harbor Prairie"
).split()
_NOUNS = (
    "Wave Labs Media Works Foods Motors Goods Studio Outfitters Robotics Bakery Cycles Apparel "
    "Analytics Travel Pets Games Audio Optics Gardens Coffee Fitness Books Logistics"
).split()
_PRODUCTS = (
    "running shoes|espresso maker|winter jacket|noise-cancelling headphones|yoga mat|"
    "smart watch|travel backpack|e-bike|cast iron pan|desk lamp|gaming mouse|rain boots"
).split("|")
_HOOKS = ("Save 20% on", "New:", "Last chance for", "Meet the", "Free shipping on", "Try our")
_SITES = (
    "news.example.com weather.example.org recipes.example.net sports.example.com "
    "techblog.example.io forum.example.org video.example.com travelguide.example.net "
    "finance.example.com gamesportal.example.io"
).split()
SITE_URLS = tuple(
    f"https://{site}/{section}/{n}"
    for site in _SITES
    for section in ("home", "article", "gallery", "search")
    for n in range(5)
)
USER_DATA = tuple(
    {"is_mobile": mobile, "location": country, "browser": browser, "os": os_name}
    for mobile in (True, False)
    for country in ("US", "DE", "FR", "GB", "IN", "BR", "JP", "CA")
    for browser in ("Chrome", "Safari", "Firefox", "Edge")
    for os_name in (("iOS", "Android") if mobile else ("Windows", "macOS", "Linux"))
)


@dataclass
class CompanyCounts:
    """What was generated for one company: rows per table, image files and their bytes."""

    rows: dict[str, int] = field(default_factory=lambda: {t.name: 0 for t in TABLES})
    files: int = 0
    file_bytes: int = 0

    @property
    def row_bytes(self) -> int:
        """Estimated on-disk bytes of the rows (``ROW_BYTES`` per row)."""
        return sum(ROW_BYTES[table] * n for table, n in self.rows.items())

    @property
    def bytes(self) -> int:
        """Image bytes plus estimated row bytes."""
        return self.file_bytes + self.row_bytes


@dataclass
class GenerationReport:
    """Per company id: its counts. Totals as properties."""

    companies: dict[int, CompanyCounts]

    @property
    def rows(self) -> int:
        return sum(sum(c.rows.values()) for c in self.companies.values())

    @property
    def files(self) -> int:
        return sum(c.files for c in self.companies.values())

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.companies.values())


def png(rng: random.Random, side: int) -> bytes:
    """A valid ``side`` x ``side`` 8-bit RGB PNG of noise (incompressible like a real photo):
    about ``3 * side**2`` bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + rng.randbytes(3 * side) for _ in range(side))
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw, 1))
        + chunk(b"IEND", b"")
    )


def company_names(count: int, seed: int) -> list[str]:
    """``count`` distinct company names, the same for the same seed."""
    pairs = [f"{a} {n}" for a in _ADJECTIVES for n in _NOUNS]
    random.Random(f"{seed}:names").shuffle(pairs)
    return [
        pairs[i % len(pairs)] + (f" {i // len(pairs) + 1}" if i >= len(pairs) else "")
        for i in range(count)
    ]


def zipf_weights(count: int, seed: int) -> list[float]:
    """Weights summing to 1, rank ``r`` getting ``1/r**ZIPF_EXPONENT``, ranks shuffled by seed
    so that size does not follow the company id."""
    ranks = list(range(1, count + 1))
    random.Random(f"{seed}:ranks").shuffle(ranks)
    raw = [r**-ZIPF_EXPONENT for r in ranks]
    total = sum(raw)
    return [w / total for w in raw]


def _batches(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    it = iter(rows)
    while batch := list(itertools.islice(it, size)):
        yield batch


async def _insert(conn: AsyncConnection, table: Table, rows: Iterable[dict[str, Any]]) -> int:
    count = 0
    for batch in _batches(rows, BATCH_ROWS):
        await conn.execute(table.insert(), batch)
        count += len(batch)
    return count


@dataclass
class _Ad:
    id: int
    campaign_id: int
    side: int
    impressions: int
    clicks: int


class _Company:
    """Generates one company's rows and files from its own random stream."""

    def __init__(self, cid: int, name: str, budget: float, seed: int, ids: dict[str, Any]):
        self.cid, self.name, self.ids = cid, name, ids
        self.rng = random.Random(f"{seed}:{cid}")
        self.domain = re.sub(r"[^a-z0-9]+", "-", name.lower()) + ".example"
        self.created = BASE_TIME + timedelta(days=self.rng.randrange(365))
        rng = self.rng
        sides: list[int] = []
        planned = 0.0
        while not sides or planned < budget * FILE_SHARE:
            sides.append(rng.randint(32, 72))
            planned += 3 * sides[-1] ** 2 + sides[-1] + 70
        self.campaign_ids = [next(ids["campaigns"]) for _ in range(math.ceil(len(sides) / 4))]
        self.variants = [rng.randint(1, 3) for _ in sides]
        fixed = ROW_BYTES["ads"] * len(sides) + ROW_BYTES["ad_variants"] * sum(self.variants)
        fixed += ROW_BYTES["campaigns"] * len(self.campaign_ids) + ROW_BYTES["companies"]
        ctrs = [rng.uniform(0.005, 0.08) for _ in sides]
        mean_ctr = sum(ctrs) / len(ctrs)
        events = max(0.0, budget - planned - fixed) / (
            ROW_BYTES["impressions"] + mean_ctr * ROW_BYTES["clicks"]
        )
        weights = [rng.paretovariate(1.5) for _ in sides]
        total_w = sum(weights)
        self.ads = []
        for k, (side, ctr, w) in enumerate(zip(sides, ctrs, weights, strict=True)):
            shown = max(1, int(events * w / total_w))
            self.ads.append(
                _Ad(
                    id=next(ids["ads"]),
                    campaign_id=self.campaign_ids[k % len(self.campaign_ids)],
                    side=side,
                    impressions=shown,
                    clicks=int(shown * ctr + rng.random()),
                )
            )

    def _when(self, max_days: int = 400) -> datetime:
        return self.created + timedelta(seconds=self.rng.randrange(max_days * 86_400))

    def company_row(self) -> dict[str, Any]:
        return {
            "id": self.cid,
            "name": self.name,
            "image_url": f"{self.cid}/logo.png",
            "created_at": self.created,
            "updated_at": self._when(),
        }

    def campaign_rows(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for cid in self.campaign_ids:
            season = rng.choice(("Spring", "Summer", "Fall", "Holiday"))
            yield {
                "company_id": self.cid,
                "id": cid,
                "name": f"{rng.choice(_PRODUCTS).title()} {season} {2024 + rng.randrange(2)}",
                "cost_model": rng.choice(("cost_per_impression", "cost_per_click")),
                "state": rng.choices(("running", "paused", "archived"), (6, 2, 2))[0],
                "monthly_budget": rng.randrange(500, 50_000, 100),
                "blacklisted_site_urls": rng.sample(SITE_URLS, rng.randint(0, 3)),
                "created_at": self.created,
                "updated_at": self._when(),
            }

    def ad_rows(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for ad in self.ads:
            product = rng.choice(_PRODUCTS)
            yield {
                "company_id": self.cid,
                "id": ad.id,
                "campaign_id": ad.campaign_id,
                "name": f"{rng.choice(_HOOKS)} {product}",
                "image_url": f"{self.cid}/ads/{ad.id}.png",
                "target_url": f"https://{self.domain}/{product.replace(' ', '-')}",
                "impressions_count": ad.impressions,
                "clicks_count": ad.clicks,
                "created_at": self.created,
                "updated_at": self._when(),
            }

    def variant_rows(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        for ad, count in zip(self.ads, self.variants, strict=True):
            for _ in range(count):
                product = rng.choice(_PRODUCTS)
                yield {
                    "id": next(self.ids["ad_variants"]),
                    "ad_id": ad.id,
                    "headline": f"{rng.choice(_HOOKS)} {product}",
                    "body": f"{self.name}: the {product} you were looking for. Order today.",
                    "weight": rng.randint(1, 100),
                }

    def event_rows(self, table: Table) -> Iterator[dict[str, Any]]:
        """Impressions or clicks (``table``) of every ad, ``ad.impressions``/``ad.clicks``."""
        rng, at, cost = self.rng, table.c[3].name, table.c[5].name
        is_click = table is clicks
        ip_first = range(1, 224)
        for ad in self.ads:
            scale = 0.5 if is_click else 0.005
            prices = [
                round(rng.uniform(0.1, 2.0) * scale, 6) for _ in range(16)
            ]  # a few auction-clearing prices per ad
            for _ in range(ad.clicks if is_click else ad.impressions):
                host = rng.getrandbits(24)
                ip = f"{rng.choice(ip_first)}.{host >> 16}.{(host >> 8) & 255}.{host & 255}"
                yield {
                    "company_id": self.cid,
                    "id": next(self.ids[table.name]),
                    "ad_id": ad.id,
                    at: self._when(),
                    "site_url": rng.choice(SITE_URLS),
                    cost: rng.choice(prices),
                    "user_ip": ip,
                    "user_data": rng.choice(USER_DATA),
                }

    async def write_files(self, store: ObjectStore, counts: CompanyCounts) -> None:
        """The logo and one image per ad under ``{company_id}/``."""
        images = [(f"{self.cid}/logo.png", 48)]
        images += [(f"{self.cid}/ads/{ad.id}.png", ad.side) for ad in self.ads]
        for start in range(0, len(images), FILE_BATCH):
            objects = [
                (key, png(self.rng, side)) for key, side in images[start : start + FILE_BATCH]
            ]
            await store.put_many(objects)
            counts.files += len(objects)
            counts.file_bytes += sum(len(data) for _, data in objects)


async def generate(
    database_url: str,
    storage_url: str,
    *,
    tenants: int = 20,
    size_mb: float = 50,
    seed: int = 0,
) -> GenerationReport:
    """Create the schema if needed and fill an EMPTY application with ``tenants`` companies
    (ids 1..tenants) of about ``size_mb`` MB (10**6 bytes) in all, deterministic from ``seed``.

    ``database_url``: SQLAlchemy async URL; ``storage_url``: ``file:///dir/`` or
    ``s3://bucket/prefix/`` (trailing ``/``). Ids of every table are unique across companies;
    ``image_url`` columns hold the object key relative to the storage root (``3/ads/17.png``),
    so the rows do not depend on where the files are.
    Raises ``ValueError`` when ``tenants < 1``, ``size_mb <= 0``, the storage URL is invalid
    or the database already holds companies.
    """
    if tenants < 1 or size_mb <= 0:
        raise ValueError(f"tenants ({tenants}) must be >= 1 and size_mb ({size_mb}) > 0")
    await create_schema(database_url)
    names = company_names(tenants, seed)
    weights = zipf_weights(tenants, seed)
    ids = {t.name: itertools.count(1) for t in TABLES}
    report = GenerationReport({})
    engine = create_engine(database_url)
    try:
        async with open_store(storage_url, create=True) as store, engine.begin() as conn:
            existing = (await conn.execute(select(func.count()).select_from(companies))).scalar()
            if existing:
                raise ValueError(
                    f"database {engine.url.render_as_string()} already holds {existing} "
                    "companies; generate into an empty application"
                )
            for cid in range(1, tenants + 1):
                company = _Company(cid, names[cid - 1], weights[cid - 1] * size_mb * 1e6, seed, ids)
                counts = CompanyCounts()
                rows = counts.rows
                rows["companies"] = await _insert(conn, companies, [company.company_row()])
                rows["campaigns"] = await _insert(conn, campaigns, company.campaign_rows())
                rows["ads"] = await _insert(conn, ads, company.ad_rows())
                rows["ad_variants"] = await _insert(conn, ad_variants, company.variant_rows())
                for table in (impressions, clicks):
                    rows[table.name] = await _insert(conn, table, company.event_rows(table))
                await company.write_files(store, counts)
                report.companies[cid] = counts
    finally:
        await engine.dispose()
    return report


def main(
    database_url: str = typer.Option(None, help="default: $APP_DATABASE_URL or .data/app.db"),
    storage_url: str = typer.Option(None, help="default: $APP_STORAGE_URL or .data/app-storage/"),
    tenants: int = typer.Option(20, min=1),
    size_mb: float = typer.Option(50, min=0.01, help="total size, megabytes (10**6 bytes)"),
    seed: int = typer.Option(0),
) -> None:
    """Generate the sample ad-analytics data into an empty application."""
    urls = app_urls(Path(".data"))
    t0 = time.monotonic()
    report = asyncio.run(
        generate(
            database_url or urls["APP_DATABASE_URL"],
            storage_url or urls["APP_STORAGE_URL"],
            tenants=tenants,
            size_mb=size_mb,
            seed=seed,
        )
    )
    seconds = time.monotonic() - t0
    largest = sorted(report.companies.items(), key=lambda kv: -kv[1].bytes)[:5]
    Console().print(
        f"{len(report.companies)} companies, {report.rows} rows, {report.files} files, "
        f"{report.bytes / 1e6:.1f} MB in {seconds:.1f} s; largest: "
        + ", ".join(f"{cid} ({c.bytes / 1e6:.1f} MB)" for cid, c in largest)
    )


if __name__ == "__main__":
    typer.run(main)
