"""Join the two lines of migrations (operation runs; data keys and certificate signatures) into
one head, so that every database reaches the same single revision.

Revision ID: 0005_merge_heads
Revises: 0003_operation_runs, 0004_certificate_signatures
"""

revision = "0005_merge_heads"
down_revision = ("0003_operation_runs", "0004_certificate_signatures")
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Nothing to change: the two lines touch different tables."""


def downgrade() -> None:
    """Nothing to change."""
