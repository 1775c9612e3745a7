"""Export records: one row per GDPR export (status, progress, archive size and SHA-256).

Revision ID: 0002_exports
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

from lifecycle.persistence.tables import UTCDateTime

revision = "0002_exports"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exports",
        sa.Column("export_id", sa.String(32), primary_key=True),
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("export_type", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.JSON, nullable=False),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("storage_key", sa.String(512)),
        sa.Column("requested_by", sa.String(320), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("estimated_completion", UTCDateTime()),
        sa.Column("completed_at", UTCDateTime()),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_exports_tenant_id", "exports", ["tenant_id"])


def downgrade() -> None:
    op.drop_index("ix_exports_tenant_id", "exports")
    op.drop_table("exports")
