"""The application's tables (SQLAlchemy Core), after the Citus "multi-tenant applications"
tutorial: every table but ``companies`` and ``ad_variants`` carries ``company_id`` and a
composite primary key ``(company_id, id)``; foreign keys include ``company_id``.

Native PostgreSQL types (``text[]``, ``jsonb``, ``inet``, ``numeric``) degrade on SQLite to JSON,
JSON, text and (float-returning) numeric. ``ad_variants`` has no tenant column: it is reached
through its parent ``ads`` by ``ad_id`` -> ``ads.id``, which is unique across all companies.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
)
from sqlalchemy.dialects import postgresql

from lifecycle.persistence.engine import create_engine

TextArray = JSON().with_variant(postgresql.ARRAY(Text), "postgresql")
JSONB = JSON().with_variant(postgresql.JSONB(), "postgresql")
INET = Text().with_variant(postgresql.INET(), "postgresql")
# SQLite has no decimal type: read amounts back as float there instead of warning on each row.
USD = Numeric(20, 10).with_variant(Numeric(20, 10, asdecimal=False), "sqlite")
Timestamp = DateTime(timezone=True)

metadata = MetaData()

companies = Table(
    "companies",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("image_url", Text),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("company_id", BigInteger, ForeignKey("companies.id"), primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", Text, nullable=False),
    Column("cost_model", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("monthly_budget", BigInteger),
    Column("blacklisted_site_urls", TextArray),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

ads = Table(
    "ads",
    metadata,
    Column("company_id", BigInteger, ForeignKey("companies.id"), primary_key=True),
    Column("id", BigInteger, primary_key=True, autoincrement=False, unique=True),
    Column("campaign_id", BigInteger, nullable=False),
    Column("name", Text, nullable=False),
    Column("image_url", Text),
    Column("target_url", Text),
    Column("impressions_count", BigInteger, nullable=False, default=0),
    Column("clicks_count", BigInteger, nullable=False, default=0),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    ForeignKeyConstraint(["company_id", "campaign_id"], ["campaigns.company_id", "campaigns.id"]),
    Index("ads_campaign", "company_id", "campaign_id"),
)

ad_variants = Table(
    "ad_variants",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("ad_id", BigInteger, ForeignKey("ads.id"), nullable=False, index=True),
    Column("headline", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("weight", Integer, nullable=False),
)


def _event_table(name: str, at: str, cost: str) -> Table:
    """``clicks`` and ``impressions`` share one shape: an event on an ad by a visitor."""
    return Table(
        name,
        metadata,
        Column("company_id", BigInteger, ForeignKey("companies.id"), primary_key=True),
        Column("id", BigInteger, primary_key=True, autoincrement=False),
        Column("ad_id", BigInteger, nullable=False),
        Column(at, Timestamp, nullable=False),
        Column("site_url", Text),
        Column(cost, USD),
        Column("user_ip", INET),
        Column("user_data", JSONB),
        ForeignKeyConstraint(["company_id", "ad_id"], ["ads.company_id", "ads.id"]),
        # Also serves the foreign-key check when ads are deleted (a purge).
        Index(f"{name}_ad", "company_id", "ad_id"),
    )


clicks = _event_table("clicks", "clicked_at", "cost_per_click_usd")
impressions = _event_table("impressions", "seen_at", "cost_per_impression_usd")

# Parents before children (insert order); a purge deletes in the reverse order.
TABLES = (companies, campaigns, ads, ad_variants, impressions, clicks)


async def create_schema(url: str) -> None:
    """Create the application's tables and indexes in database ``url`` (an SQLAlchemy async URL,
    ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://``) unless they exist; idempotent."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(metadata.create_all)
    finally:
        await engine.dispose()
