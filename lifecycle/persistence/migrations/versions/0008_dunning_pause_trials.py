"""Dunning, pause and trials (issue 17): ``tenants.suspension`` (kind and resume time of a
suspension, JSON), ``tenants.dunning`` (the place on the dunning ladder, JSON) and
``tenants.trial_ends_at``; all nullable, existing rows keep NULL.

Revision ID: 0008_dunning_pause_trials
Revises: 0007_outbound_events
"""

import sqlalchemy as sa
from alembic import op

from lifecycle.persistence.tables import UTCDateTime

revision = "0008_dunning_pause_trials"
down_revision = "0007_outbound_events"
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
