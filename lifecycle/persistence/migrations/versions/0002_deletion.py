"""Soft delete and billing webhooks: deletion_certificates, webhook_events, and the index
that finds a tenant by its subscription.

Revision ID: 0002_deletion
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from lifecycle.persistence.tables import UTCDateTime

revision = "0002_deletion"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deletion_certificates",
        sa.Column("tenant_id", sa.String(63), primary_key=True),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("document", sa.JSON, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("signature", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_table(
        "webhook_events",
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("type", sa.String(128), nullable=False),
        sa.Column("tenant_id", sa.String(63)),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("received_at", UTCDateTime(), nullable=False),
    )
    # invoice webhooks find the tenant by its subscription
    op.create_index("ix_tenants_billing_subscription_id", "tenants", ["billing_subscription_id"])


def downgrade() -> None:
    op.drop_index("ix_tenants_billing_subscription_id", "tenants")
    op.drop_table("webhook_events")
    op.drop_table("deletion_certificates")
