"""Unique data keys: ``tenants.data_key_canonical`` and a partial unique index over the live
(not purged) tenants, so that one tenant's data key can never select another's data.

Existing rows get their canonical key; when several live tenants already share one, the
oldest keeps it and the others get NULL (logged as a warning): the export and the purge refuse
to run for them until an operator resolves the conflict.

Revision ID: 0003_data_keys
Revises: 0002_deletion
"""

import logging

import sqlalchemy as sa
from alembic import op

from lifecycle.domain.tenants import canonical_data_key

revision = "0003_data_keys"
down_revision = "0002_deletion"
branch_labels = None
depends_on = None

LIVE = sa.text("purged_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(sa.Column("data_key_canonical", sa.String(200)))
    tenants = sa.table(
        "tenants",
        sa.column("id", sa.String),
        sa.column("data_key", sa.String),
        sa.column("data_key_canonical", sa.String),
        sa.column("purged_at", sa.DateTime),
        sa.column("created_at", sa.DateTime),
    )
    conn = op.get_bind()
    rows = conn.execute(
        sa.select(tenants.c.id, tenants.c.data_key, tenants.c.purged_at).order_by(
            tenants.c.created_at, tenants.c.id
        )
    ).all()
    holders: dict[str, str] = {}
    for tenant_id, data_key, purged_at in rows:
        key = canonical_data_key(data_key)
        if purged_at is None:
            if key in holders:
                logging.getLogger("alembic").warning(
                    "tenant %r shares data key %r with tenant %r: its exports and purges are "
                    "refused until the conflict is resolved",
                    tenant_id,
                    data_key,
                    holders[key],
                )
                continue
            holders[key] = tenant_id
        conn.execute(
            tenants.update().where(tenants.c.id == tenant_id).values(data_key_canonical=key)
        )
    op.create_index(
        "uq_tenants_live_data_key",
        "tenants",
        ["data_key_canonical"],
        unique=True,
        sqlite_where=LIVE,
        postgresql_where=LIVE,
    )


def downgrade() -> None:
    op.drop_index("uq_tenants_live_data_key", "tenants")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("data_key_canonical")
