"""Exports (GDPR Art. 15/20): start, follow, list, and download through signed links."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from lifecycle.api.deps import Dpo, Lifecycle, Operator, Viewer, principal_of
from lifecycle.api.idempotency import IdempotencyHeader, idempotent
from lifecycle.api.routes.tenants import TenantId
from lifecycle.domain.exports import ExportRequest, ExportStarted, ExportView

router = APIRouter(tags=["exports"])

#: Export ids are 32 hex digits (``uuid4().hex``); anything else is a 422 before any lookup.
ExportId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="export id")]


def _absolute(request: Request, view: ExportView) -> ExportView:
    """Local download links are paths of this API: make them absolute for the caller."""
    if view.download_url and view.download_url.startswith("/"):
        view.download_url = str(request.base_url).rstrip("/") + view.download_url
    return view


@router.post("/tenants/{tenant_id}/exports", status_code=202, response_model=ExportStarted)
async def start_export(
    tenant_id: TenantId,
    request: Request,
    lifecycle: Lifecycle,
    actor: Operator,
    body: ExportRequest | None = None,
    idempotency_key: IdempotencyHeader = None,
) -> JSONResponse:
    """Start an export (``full``: rows and files, ``tables``: rows only); 202 with the
    export id, 404 unknown tenant, 409 unless ACTIVE."""
    export_type = (body or ExportRequest()).export_type

    async def produce() -> ExportStarted:
        return await lifecycle.exports.export_tenant(tenant_id, export_type, actor)

    return await idempotent(request, lifecycle, idempotency_key, produce)


@router.get("/tenants/{tenant_id}/exports")
async def list_exports(
    tenant_id: TenantId, request: Request, lifecycle: Lifecycle, _: Viewer
) -> list[ExportView]:
    """The tenant's exports, newest first."""
    return [_absolute(request, v) for v in await lifecycle.exports.list_exports(tenant_id)]


@router.get("/exports/{export_id}")
async def get_export(
    export_id: ExportId, request: Request, lifecycle: Lifecycle, _: Viewer
) -> ExportView:
    """Status, progress (chunks and bytes), size, SHA-256 and, once completed, a download
    link valid at most 7 days."""
    return _absolute(request, await lifecycle.exports.get_export(export_id))


@router.get("/exports/{export_id}/download", response_class=FileResponse)
async def download(
    export_id: ExportId,
    lifecycle: Lifecycle,
    expires: Annotated[int, Query(ge=0, le=2**63 - 1, description="Unix seconds")],
    signature: Annotated[str, Query(max_length=128)],
) -> FileResponse:
    """The archive of a local export; authorised by the link's HMAC-SHA256 signature, not
    the bearer token: 403 when tampered or once the tenant is suspended or soft-deleted
    (naming its state), 410 when expired or the archive was deleted."""
    lifecycle.exports.storage.check_signature(export_id, expires, signature, time.time())
    archive = await lifecycle.exports.linked_archive(export_id)
    assert archive.path is not None  # signed links are served for local storage only
    return FileResponse(
        archive.path,
        media_type="application/zip",
        filename=archive.filename,
        headers={"X-Content-SHA256": archive.sha256},
    )


@router.get(
    "/exports/{export_id}/archive",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/zip": {}}, "description": "the archive"}},
)
async def download_as_dpo(
    export_id: ExportId, request: Request, lifecycle: Lifecycle, actor: Dpo
) -> StreamingResponse:
    """The archive for a token with the ``dpo`` role, whatever the tenant's state: after a
    suspension or soft delete revokes the signed links, the data protection officer still
    answers the customer's access request (GDPR Art. 15). Local or S3 storage, streamed;
    audited as ``export-downloaded``. 404 not completed, 410 deleted after its retention."""
    archive = await lifecycle.exports.serve_archive(
        export_id, actor=actor, role=principal_of(request).role
    )
    return StreamingResponse(
        archive.chunks(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{archive.filename}"',
            "X-Content-SHA256": archive.sha256,
        },
    )
