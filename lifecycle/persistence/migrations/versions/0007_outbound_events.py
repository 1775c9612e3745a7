"""Outbound lifecycle events (issue 17, item 5): the transactional outbox, the per-tenant
sequence counter and one delivery row per event and endpoint.

Revision ID: 0007_outbound_events
Revises: 0006_plan_migrations
"""

import sqlalchemy as sa
from alembic import op

from lifecycle.persistence.tables import UTCDateTime

revision = "0007_outbound_events"
down_revision = "0006_plan_migrations"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("sequence", sa.Integer, nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("dispatched_at", UTCDateTime()),
    )
    op.create_index(
        "uq_outbound_events_sequence", "outbound_events", ["tenant_id", "sequence"], unique=True
    )
    op.create_index("ix_outbound_events_dispatched_at", "outbound_events", ["dispatched_at"])
    op.create_table(
        "tenant_event_sequences",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("last_sequence", sa.Integer, nullable=False),
    )
    op.create_table(
        "event_deliveries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "event_id",
            sa.Integer,
            sa.ForeignKey("outbound_events.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("endpoint_index", sa.Integer, nullable=False),
        sa.Column("endpoint", sa.String(2048), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.Text),
        sa.Column("delivered_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_index(
        "uq_event_deliveries_endpoint",
        "event_deliveries",
        ["event_id", "endpoint_index"],
        unique=True,
    )
    op.create_index("ix_event_deliveries_status", "event_deliveries", ["status"])


def downgrade() -> None:
    op.drop_table("event_deliveries")
    op.drop_table("tenant_event_sequences")
    op.drop_table("outbound_events")
