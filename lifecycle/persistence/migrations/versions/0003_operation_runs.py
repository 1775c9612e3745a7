"""operations keyed by (workflow_id, run_id): a re-run under a reused workflow id (a second
upgrade, a tenant's second deletion) adds a row instead of overwriting the previous run.
Merges the three 0002 heads.

Existing rows keep their data with ``run_id = ''`` (recorded before run ids were kept); a
still running one is adopted by its run's next record (``TenantRepository.record_operation``).

Revision ID: 0003_operation_runs
Revises: 0002_deletion, 0002_exports, 0002_operation_duration
"""

import sqlalchemy as sa
from alembic import op

from lifecycle.persistence.tables import UTCDateTime

revision = "0003_operation_runs"
down_revision = ("0002_deletion", "0002_exports", "0002_operation_duration")
branch_labels = None
depends_on = None

COLUMNS = (
    "workflow_id",
    "tenant_id",
    "kind",
    "status",
    "step",
    "started_at",
    "finished_at",
    "duration_seconds",
    "result",
    "error",
)


def _operations_table(name: str, *, with_run_id: bool) -> None:
    run_id = [sa.Column("run_id", sa.String(64), primary_key=True)] if with_run_id else []
    op.create_table(
        name,
        sa.Column("workflow_id", sa.String(255), primary_key=True),
        *run_id,
        sa.Column("tenant_id", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.String(64)),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("result", sa.JSON),
        sa.Column("error", sa.Text),
    )


def _swap(new: str, *, with_run_id: bool) -> None:
    """Copy ``operations`` into ``new``, replace it and recreate its indexes."""
    columns = ", ".join(COLUMNS)
    source = f"{columns}, ''" if with_run_id else columns
    target = f"{columns}, run_id" if with_run_id else columns
    if not with_run_id:  # downgrade: the latest run of each workflow id survives
        source_sql = (
            f"SELECT {columns} FROM operations o WHERE o.started_at = "
            "(SELECT max(started_at) FROM operations p WHERE p.workflow_id = o.workflow_id)"
        )
    else:
        source_sql = f"SELECT {source} FROM operations"
    op.execute(f"INSERT INTO {new} ({target}) {source_sql}")
    op.drop_index("ix_operations_status", "operations")
    op.drop_index("ix_operations_tenant_id", "operations")
    op.drop_table("operations")
    op.rename_table(new, "operations")
    op.create_index("ix_operations_tenant_id", "operations", ["tenant_id"])
    op.create_index("ix_operations_status", "operations", ["status"])
    if with_run_id:
        op.create_index("ix_operations_tenant_started", "operations", ["tenant_id", "started_at"])


def upgrade() -> None:
    _operations_table("operations_runs", with_run_id=True)
    _swap("operations_runs", with_run_id=True)


def downgrade() -> None:
    op.drop_index("ix_operations_tenant_started", "operations")
    _operations_table("operations_latest", with_run_id=False)
    _swap("operations_latest", with_run_id=False)
