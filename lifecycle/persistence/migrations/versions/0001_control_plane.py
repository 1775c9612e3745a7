"""Control-plane tables: tenants, entitlements, lifecycle_events, operations, idempotency_keys.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from lifecycle.persistence.tables import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(200)),
        sa.Column("email", sa.String(320)),
        sa.Column("data_key", sa.String(200), nullable=False),
        sa.Column("plan", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("billing_customer_id", sa.String(255)),
        sa.Column("billing_subscription_id", sa.String(255)),
        sa.Column("billing_period_end", UTCDateTime()),
        sa.Column("usage", sa.JSON, nullable=False),
        sa.Column("pending_plan_change", sa.JSON),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("suspended_reason", sa.Text),
        sa.Column("deletion_requested_at", UTCDateTime()),
        sa.Column("deletion_requested_by", sa.String(320)),
        sa.Column("plan_at_deletion", sa.String(64)),
        sa.Column("purge_scheduled_at", UTCDateTime()),
        sa.Column("purged_at", UTCDateTime()),
        sa.Column("legal_hold", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.create_index("ix_tenants_state", "tenants", ["state"])
    op.create_table(
        "entitlements",
        sa.Column(
            "tenant_id",
            sa.String(63),
            sa.ForeignKey("tenants.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("limit", sa.BigInteger, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "lifecycle_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("from_state", sa.String(16)),
        sa.Column("to_state", sa.String(16)),
        sa.Column("workflow_id", sa.String(255)),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_lifecycle_events_tenant_id", "lifecycle_events", ["tenant_id"])
    op.create_index("ix_lifecycle_events_at", "lifecycle_events", ["at"])
    op.create_table(
        "operations",
        sa.Column("workflow_id", sa.String(255), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.String(64)),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_operations_tenant_id", "operations", ["tenant_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer, nullable=False),
        sa.Column("response", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def downgrade() -> None:
    for table in ("idempotency_keys", "operations", "lifecycle_events", "entitlements"):
        op.drop_table(table)
    op.drop_index("ix_tenants_state", "tenants")
    op.drop_table("tenants")
