"""The console overview's reads on SQLite and PostgreSQL: operation runs per UTC day and
status, and the latest failed runs with their error."""

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from lifecycle.domain.tenants import OperationUpdate
from lifecycle.persistence.tables import Operation
from lifecycle.persistence.tenants import TenantRepository


async def _run(repo: TenantRepository, wid: str, status: str, error: str | None = None) -> None:
    await repo.record_operation(
        OperationUpdate(workflow_id=wid, tenant_id="acme", kind="upgrade", status="running"),
        run_id="r1",
    )
    if status != "running":
        await repo.record_operation(
            OperationUpdate(
                workflow_id=wid, tenant_id="acme", kind="upgrade", status=status, error=error
            ),
            run_id="r1",
        )


async def test_operations_by_day_and_failed_operations(repository: TenantRepository) -> None:
    now = datetime.now(UTC)
    await _run(repository, "wf-old", "completed")
    await _run(repository, "wf-yesterday", "failed", "card declined")
    await _run(repository, "wf-ok", "completed")
    await _run(repository, "wf-fail", "failed", "provisioning timed out")
    await _run(repository, "wf-live", "running")
    async with repository.sessions.begin() as session:  # move two runs back in time
        for wid, days in (("wf-old", 30), ("wf-yesterday", 1)):
            await session.execute(
                update(Operation)
                .where(Operation.workflow_id == wid)
                .values(started_at=now - timedelta(days=days))
            )

    since = (now - timedelta(days=13)).replace(hour=0, minute=0, second=0, microsecond=0)
    by_day = await repository.operations_by_day(since)
    yesterday = (now - timedelta(days=1)).date()
    assert by_day == {
        yesterday: {"failed": 1},
        now.date(): {"completed": 1, "failed": 1, "running": 1},
    }
    failed = await repository.failed_operations(limit=5)
    assert [(op.workflow_id, op.error) for op in failed] == [
        ("wf-fail", "provisioning timed out"),
        ("wf-yesterday", "card declined"),
    ]
    assert [op.workflow_id for op in await repository.failed_operations(limit=1)] == ["wf-fail"]
