"""operations.duration_seconds: wall time of a finished operation, for the duration histogram.

Revision ID: 0002_operation_duration
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_operation_duration"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("duration_seconds", sa.Float))
        batch.create_index("ix_operations_status", ["status"])


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_index("ix_operations_status")
        batch.drop_column("duration_seconds")
