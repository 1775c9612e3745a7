"""The ``exports`` table: one row per export, written by the API (queued) and the export
workflow's activities (running, progress, completed or failed, expired)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from lifecycle.domain.errors import LifecycleError
from lifecycle.domain.events import EventType
from lifecycle.domain.exports import ExportUpdate
from lifecycle.persistence.engine import Sessions
from lifecycle.persistence.events import add_outbound_event
from lifecycle.persistence.tables import Export, Tenant, utcnow

#: Assumed when a tenant has no completed export yet (a first estimate only).
DEFAULT_DURATION = timedelta(seconds=60)


class ExportNotFound(LifecycleError):
    """No export with this id."""

    status = 404
    title = "Export not found"

    def __init__(self, export_id: str) -> None:
        super().__init__(f"export '{export_id}' does not exist")


class ExportRepository:
    """Reads and writes of export records, through the control plane's ``Sessions``."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def create(
        self,
        *,
        export_id: str,
        tenant_id: str,
        workflow_id: str,
        export_type: str,
        requested_by: str,
        estimated_completion: datetime,
    ) -> Export:
        """Insert a queued export."""
        row = Export(
            export_id=export_id,
            tenant_id=tenant_id,
            workflow_id=workflow_id,
            export_type=export_type,
            status="queued",
            progress={},
            requested_by=requested_by,
            created_at=utcnow(),
            estimated_completion=estimated_completion,
        )
        async with self.sessions.begin() as session:
            session.add(row)
        return row

    async def get(self, export_id: str) -> Export:
        """The export row; raises ExportNotFound."""
        async with self.sessions() as session:
            row = await session.get(Export, export_id)
        if row is None:
            raise ExportNotFound(export_id)
        return row

    async def list(self, tenant_id: str) -> list[Export]:
        """A tenant's exports, newest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Export)
                .where(Export.tenant_id == tenant_id)
                .order_by(Export.created_at.desc(), Export.export_id)
            )
            return list(rows)

    async def update(self, change: ExportUpdate) -> None:
        """Apply the non-None fields of ``change``; an unknown export is ignored (a purge may
        have removed the tenant's records meanwhile). The change to ``completed`` adds the
        ``tenant.export_ready`` event to the outbox in the same transaction (no link in it:
        signed links are secrets; the receiver asks ``GET /exports/{id}``)."""
        fields = change.model_dump(exclude_none=True, exclude={"export_id"})
        async with self.sessions.begin() as session:
            row = await session.get(Export, change.export_id)
            if row is None:
                return
            ready = fields.get("status") == "completed" and row.status != "completed"
            for name, value in fields.items():
                setattr(row, name, value)
            if ready:
                await add_outbound_event(
                    session,
                    row.tenant_id,
                    EventType.EXPORT_READY,
                    {
                        "data_key": await session.scalar(
                            select(Tenant.data_key).where(Tenant.id == row.tenant_id)
                        ),
                        "export_id": row.export_id,
                        "export_type": row.export_type,
                        "workflow_id": row.workflow_id,
                        "size_bytes": row.size_bytes,
                        "sha256": row.sha256,
                        "expires_at": row.expires_at.isoformat() if row.expires_at else None,
                    },
                    utcnow(),
                )

    async def typical_duration(self, tenant_id: str) -> timedelta:
        """How long the tenant's last completed export took (DEFAULT_DURATION without one)."""
        async with self.sessions() as session:
            row = await session.scalar(
                select(Export)
                .where(Export.tenant_id == tenant_id, Export.completed_at.is_not(None))
                .where(Export.status.in_(["completed", "expired"]))
                .order_by(Export.created_at.desc())
                .limit(1)
            )
        if row is None or row.completed_at is None:
            return DEFAULT_DURATION
        return row.completed_at - row.created_at
