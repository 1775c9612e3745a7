"""Exports (GDPR Art. 15/20): start one, read its status and progress, list a tenant's, sign
download links (none while the tenant's access is revoked) and find the archive a link or an
authenticated caller downloads."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path

from temporalio.service import RPCError

from lifecycle.client.base import PROGRESS_QUERY_TIMEOUT, Service
from lifecycle.domain.errors import DataKeyConflict, LifecycleError, StateConflict
from lifecycle.domain.exports import (
    ExportAccessRevoked,
    ExportInput,
    ExportStarted,
    ExportType,
    ExportUpdate,
    ExportView,
    revoked_detail,
)
from lifecycle.domain.operations import OperationKind, workflow_id
from lifecycle.domain.states import TenantState
from lifecycle.persistence.exports import ExportRepository
from lifecycle.persistence.tables import Export, utcnow
from lifecycle.storage.exports import ExportStorage, LinkExpired
from lifecycle.storage.objectstore import ObjectStore


class ArchiveNotServed(LifecycleError):
    """The export has no archive to serve (not completed, or, for a signed link, kept on
    S3, whose links S3 presigns)."""

    status = 404
    title = "Not found"


@dataclass(frozen=True)
class Archive:
    """A completed export's archive: where it is (``store`` and ``key``; ``path`` too on
    local storage), the download ``filename``, its ``sha256`` (hex) and the tenant's state
    when it was looked up."""

    tenant_id: str
    export_id: str
    store: ObjectStore
    key: str
    path: Path | None
    filename: str
    sha256: str
    tenant_state: TenantState

    def chunks(self) -> AsyncIterator[bytes]:
        """The archive's bytes, streamed in chunks of at most 1 MiB (local file or S3)."""
        return self.store.read(self.key)


class ExportService(Service):
    """Starts export workflows and reads their records."""

    @cached_property
    def records(self) -> ExportRepository:
        """The ``exports`` table."""
        return ExportRepository(self.core.repository.sessions)

    @cached_property
    def storage(self) -> ExportStorage:
        """Where archives live, with signed links."""
        return ExportStorage.from_settings(self.core.settings, signing=True)

    async def export_tenant(
        self, tenant_id: str, export_type: ExportType = "full", actor: str = "api"
    ) -> ExportStarted:
        """Start an export of everything ``tenant_id`` owns in the data map; returns
        ``{export_id, workflow_id, tenant_id, status: "queued", estimated_completion}``.

        Raises TenantNotFound, StateConflict unless the tenant is ACTIVE (the workflow's
        compare-and-set to EXPORTING settles a race between two requests), and
        DataKeyConflict when another live tenant holds the same data key (the archive would
        hold that tenant's data).
        """
        tenant = await self.core.repository.get(tenant_id)
        if tenant.state is not TenantState.ACTIVE:
            raise StateConflict(f"tenant '{tenant_id}' is {tenant.state}; export needs ACTIVE")
        holder = await self.core.repository.data_key_holder(tenant.data_key, tenant_id)
        if holder is not None:
            raise DataKeyConflict(tenant.data_key, holder)
        export_id = uuid.uuid4().hex
        wid = workflow_id(tenant_id, OperationKind.EXPORT, export_id)
        eta = utcnow() + await self.records.typical_duration(tenant_id)
        await self.records.create(
            export_id=export_id,
            tenant_id=tenant_id,
            workflow_id=wid,
            export_type=export_type,
            requested_by=actor,
            estimated_completion=eta,
        )
        from workflows.export import ExportWorkflow

        data = ExportInput(
            tenant_id=tenant_id,
            export_id=export_id,
            export_type=export_type,
            actor=actor,
            chunk_bytes=int(self.core.settings.data_export_chunk_size_mb * 1024 * 1024),
            retention_days=self.core.settings.export_retention_days,
        )
        try:
            await self.core.start(
                ExportWorkflow.run,
                data,
                tenant_id=tenant_id,
                kind=OperationKind.EXPORT,
                suffix=export_id,
            )
        except BaseException as exc:
            await self.records.update(
                ExportUpdate(export_id=export_id, status="failed", error=f"not started: {exc}")
            )
            raise
        return ExportStarted(
            export_id=export_id,
            workflow_id=wid,
            tenant_id=tenant_id,
            estimated_completion=eta.isoformat(),
        )

    async def get_export(self, export_id: str) -> ExportView:
        """The export's status and progress (live from the workflow while it runs); for a
        completed export a download link valid EXPORT_LINK_TTL_DAYS (at most 7 days, and no
        longer than the archive is kept), or none while the tenant's access is revoked
        (``access_revoked`` says why). Raises ExportNotFound."""
        row = await self.records.get(export_id)
        tenant = await self.core.repository.get(row.tenant_id)
        return await self._export_view(row, tenant.state)

    async def list_exports(self, tenant_id: str) -> list[ExportView]:
        """A tenant's exports, newest first, links as in :meth:`get_export` (raises
        TenantNotFound)."""
        tenant = await self.core.repository.get(tenant_id)
        return [
            await self._export_view(row, tenant.state) for row in await self.records.list(tenant_id)
        ]

    async def linked_archive(self, export_id: str) -> Archive:
        """The archive a signed link (already checked) points to. Raises ExportNotFound,
        ExportAccessRevoked (403 naming the state) once the tenant is suspended or
        soft-deleted: revoking access revokes the links issued before (issue 13, section 4),
        LinkExpired (410) after the retention, ArchiveNotServed (404)."""
        return await self._archive(export_id, enforce_access=True)

    async def serve_archive(self, export_id: str, actor: str, role: str) -> Archive:
        """The archive for an authenticated caller whose role the API checked (the ``dpo``
        role, issue 14): served whatever the tenant's state, since the data protection
        officer answers the access request of a suspended or deleted customer (GDPR Art. 15),
        and audited as ``export-downloaded`` (actor, role, export, SHA-256, tenant state).
        Raises ExportNotFound, LinkExpired (410), ArchiveNotServed (404)."""
        archive = await self._archive(export_id, enforce_access=False)
        await self.core.repository.record_event(
            archive.tenant_id,
            "export-downloaded",
            workflow_id=None,
            actor=actor,
            detail={
                "export_id": export_id,
                "role": role,
                "sha256": archive.sha256,
                "tenant_state": archive.tenant_state.value,
            },
        )
        return archive

    async def _archive(self, export_id: str, *, enforce_access: bool) -> Archive:
        row = await self.records.get(export_id)
        tenant = await self.core.repository.get(row.tenant_id)
        if enforce_access and (refused := revoked_detail(row.tenant_id, tenant.state)):
            raise ExportAccessRevoked(refused)
        if row.status == "expired":
            raise LinkExpired(f"export '{export_id}' was deleted after its retention period")
        if row.status != "completed":
            raise ArchiveNotServed(f"export '{export_id}' is {row.status}: no archive yet")
        if enforce_access and self.storage.kind != "local":
            raise ArchiveNotServed(f"export '{export_id}' is on S3: its links are presigned")
        store, key = self.storage.archives(row.tenant_id), self.storage.archive_name(export_id)
        path = self.storage.local_path(row.tenant_id, export_id)
        if self.storage.kind == "local":
            exists = path.is_file()
        else:
            exists = any([name == key async for name, _ in store.list()])
        if not exists:
            raise LinkExpired(f"the archive of export '{export_id}' no longer exists")
        return Archive(
            tenant_id=row.tenant_id,
            export_id=export_id,
            store=store,
            key=key,
            path=path if self.storage.kind == "local" else None,
            filename=f"{row.tenant_id}-export-{export_id}.zip",
            sha256=row.sha256 or "",
            tenant_state=tenant.state,
        )

    async def _export_view(self, row: Export, tenant_state: TenantState) -> ExportView:
        view = ExportView.model_validate(row, from_attributes=True)
        view.archive_expires_at = row.expires_at
        if row.status in ("queued", "running"):
            from workflows.export import ExportWorkflow

            try:
                live = await self.core.handle(row.workflow_id).query(
                    ExportWorkflow.progress, rpc_timeout=PROGRESS_QUERY_TIMEOUT
                )
                view.progress = live.counts()
            except RPCError:
                pass  # no worker polling right now: the recorded progress stands
        elif refused := revoked_detail(row.tenant_id, tenant_state):
            view.access_revoked, view.expires_at = refused, None
        elif row.status == "completed" and row.expires_at is not None:
            now = utcnow()
            until = min(
                now + timedelta(days=self.core.settings.export_link_ttl_days), row.expires_at
            )
            view.expires_at = until
            view.download_url = await self.storage.download_url(
                row.tenant_id, row.export_id, int(until.timestamp()), int(now.timestamp())
            )
        return view
