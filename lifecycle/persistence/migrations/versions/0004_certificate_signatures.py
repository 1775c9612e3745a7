"""Ed25519 deletion certificates: ``deletion_certificates.signature`` holds 128 hex digits
(64 before, for HMAC-SHA256); existing certificates are kept as they are.

Revision ID: 0004_certificate_signatures
Revises: 0003_data_keys
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_certificate_signatures"
down_revision = "0003_data_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deletion_certificates") as batch:
        batch.alter_column("signature", type_=sa.String(256), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("deletion_certificates") as batch:
        batch.alter_column("signature", type_=sa.String(64), existing_nullable=False)
