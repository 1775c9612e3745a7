"""Bulk plan migrations: the tenants a migration did not move (with the cause), and the
shared rate limits (the billing writes' GCRA slot, BILLING_RATE_LIMIT).

Revision ID: 0006_plan_migrations
Revises: 0005_merge_heads
"""

import sqlalchemy as sa
from alembic import op

from lifecycle.persistence.tables import UTCDateTime

revision = "0006_plan_migrations"
down_revision = "0005_merge_heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create ``plan_migration_failures`` and ``rate_limits``."""
    op.create_table(
        "plan_migration_failures",
        sa.Column("migration_id", sa.String(64), primary_key=True),
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("cause", sa.String(64), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "rate_limits",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("next_at", sa.Float, nullable=False),
    )


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("rate_limits")
    op.drop_table("plan_migration_failures")
