"""Dunning, pause and trials (issue 17): ``tenants.suspension`` (kind and resume time of a
suspension, JSON), ``tenants.dunning`` (the place on the dunning ladder, JSON) and
``tenants.trial_ends_at``; all nullable, existing rows keep NULL.

Revision ID: 0006_dunning_pause_trials
Revises: 0005_merge_heads
"""

import sqlalchemy as sa
from alembic import op

from lifecycle.persistence.tables import UTCDateTime

revision = "0006_dunning_pause_trials"
down_revision = "0005_merge_heads"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("suspension", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("dunning", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("trial_ends_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("trial_ends_at")
        batch.drop_column("dunning")
        batch.drop_column("suspension")
