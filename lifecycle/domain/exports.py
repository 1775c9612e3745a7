"""Inputs and results of the export workflow and its activities, and the API's export view.

Pure pydantic models, importable from workflow code. Sizes are bytes, times UTC-aware. A
*stream* is one source of the archive: a table of the data map (rows -> one JSON Lines file)
or a storage prefix (files). Each stream is exported as a chain of *chunks*; a chunk starts
after the previous chunk's last key and holds at most ``max_bytes`` of output, measured while
writing (a single row or file larger than the bound forms a chunk of its own).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from lifecycle.domain.base import DomainModel
from lifecycle.domain.errors import LifecycleError
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import OperationProgress

ExportType = Literal["full", "tables"]
ExportStatus = Literal["queued", "running", "completed", "failed", "expired"]
StreamKind = Literal["table", "files", "cache"]


#: States in which the tenant's access is revoked (entitlements at 0): its signed download
#: links are refused and no new ones are issued (issue 13, section 4).
ACCESS_REVOKED_STATES = frozenset(
    {TenantState.SUSPENDED, TenantState.DELETING, TenantState.DELETED, TenantState.REACTIVATING}
)


def revoked_detail(tenant_id: str, state: TenantState) -> str | None:
    """Why links to ``tenant_id``'s exports are refused in ``state``, or None when allowed."""
    if state not in ACCESS_REVOKED_STATES:
        return None
    return (
        f"tenant '{tenant_id}' is {state}: its access is revoked, so its export links are refused"
    )


class ExportAccessRevoked(LifecycleError):
    """A signed download link of a tenant whose access is revoked (suspended, deleted)."""

    status = 403
    title = "Access revoked"


class ExportRequest(DomainModel):
    """Body of ``POST /tenants/{id}/exports``: ``full`` = rows and files, ``tables`` = rows."""

    export_type: ExportType = "full"


class ExportRef(DomainModel):
    """One export of one tenant."""

    tenant_id: str
    export_id: str


class RetentionInput(DomainModel):
    """Delete export ``ref`` ``delete_after_days`` after the export completed."""

    ref: ExportRef
    delete_after_days: int


class ExportInput(DomainModel):
    """Input of the export workflow; ``chunk_bytes`` and the retention fixed at the start."""

    tenant_id: str
    export_id: str
    export_type: ExportType = "full"
    actor: str = "api"
    chunk_bytes: int = Field(gt=0)
    retention_days: int = Field(ge=1)


class PlanInput(DomainModel):
    """What to plan: the tenant's ``data_key`` in the data map and the export type."""

    tenant_id: str
    export_id: str
    data_key: str
    export_type: ExportType
    chunk_bytes: int


class StreamPlan(DomainModel):
    """One stream of the archive with its size estimate.

    ``ref`` indexes ``datamap.tables`` (kind table), ``datamap.storage`` (kind files) or
    ``datamap.cache`` (kind cache, entries with ``export = true``); ``path`` is the JSON Lines
    file (``tables/<db>.<table>.jsonl``, ``cache/<i>.jsonl``) or the folder of the files
    (``files/<i>/``) in the archive; ``items`` rows, files or cache keys; ``est_bytes``
    estimated output bytes (rows: sampled bytes per row times rows; files: exact at planning
    time; cache keys: CACHE_KEY_BYTES each).

    A table larger than one chunk is split into ``parts`` streams of consecutive primary-key
    ranges, exported at once: part ``part`` (1-based) holds the keys > ``start`` and <=
    ``until`` (None: unbounded; encoded primary-key values), in the member
    ``tables/<db>.<table>-<part>-of-<parts>.jsonl`` (both numbers five digits). Plans made
    before the split have ``part`` None: one stream per table.
    """

    index: int
    kind: StreamKind
    ref: int
    name: str
    path: str
    items: int
    est_bytes: int
    est_chunks: int
    columns: dict[str, str] = Field(default_factory=dict)
    part: int | None = None
    parts: int | None = None
    start: Any = None
    until: Any = None


class ExportPlan(DomainModel):
    streams: list[StreamPlan]

    @property
    def est_bytes(self) -> int:
        return sum(s.est_bytes for s in self.streams)


class ChunkInput(DomainModel):
    """One chunk of stream ``stream``: items after cursor ``after`` (None = from the start;
    the primary-key values of a table's last row, or a file's key), at most ``max_bytes``;
    a table part's rows stop at primary key ``until`` (inclusive; None = the table's end)."""

    tenant_id: str
    export_id: str
    data_key: str
    stream: int
    kind: StreamKind
    ref: int
    seq: int
    after: Any = None
    until: Any = None
    max_bytes: int


class ChunkResult(DomainModel):
    """A written chunk: ``bytes`` of tenant data (JSON Lines or files, before compression),
    ``items`` rows or files; ``after`` the cursor where the next chunk starts; ``done`` when
    the stream ended. ``sha256``: of the table's JSON Lines through this chunk (None for
    files; before the member format, of the part file)."""

    stream: int
    seq: int
    after: Any
    items: int
    bytes: int
    sha256: str | None = None
    done: bool


class FileEntry(DomainModel):
    """A file copied into a chunk's part, in order: ``key`` under its storage prefix,
    ``size`` bytes, its SHA-256 (hex) and CRC-32 (None before the member format)."""

    key: str
    size: int
    sha256: str
    crc32: int | None = None


class ChunkRecord(ChunkResult):
    """The sidecar written next to a part once it is complete.

    A part holds finished ZIP member data (``member``): a table chunk's part is the next
    piece of its member's raw DEFLATE stream (``part_bytes`` long), ``crc32`` and
    ``sha_state`` (a resumable SHA-256 state, hex) cover the table's JSON Lines through
    this chunk; a files chunk's part is its ``files`` stored one after the other. Sidecars
    written before the member format (``member`` False) held plain JSON Lines parts.
    ``part_crc32``: the CRC-32 of the part's bytes, checked by the assembly (None in
    sidecars written before parts were scratch objects).
    """

    files: list[FileEntry] = Field(default_factory=list)
    member: bool = False
    part_bytes: int = 0
    part_crc32: int | None = None
    crc32: int | None = None
    sha_state: str | None = None


class AssembleInput(DomainModel):
    """Assemble the archive from ``chunks[i]`` parts of each stream ``streams[i]``, its
    members in the order of ``streams``. ``chunks`` None: the assembly runs beside the chunks
    and follows each stream's sidecars as they appear until the one marked done."""

    tenant_id: str
    export_id: str
    export_type: ExportType
    generated_at: datetime
    streams: list[StreamPlan]
    chunks: list[int] | None


def assembly_task_queue(task_queue: str) -> str:
    """The task queue of the assemblies that run beside their chunks, next to the workflow's
    ``task_queue``: an assembly waiting for chunks holds a slot of its own queue, never one
    the chunks need (two exports' waiting assemblies could otherwise take every slot)."""
    return f"{task_queue}-export-assembly"


class ArchiveResult(DomainModel):
    """The archive in export storage: ``key``, ``size_bytes``, ``sha256`` of the ZIP."""

    key: str
    size_bytes: int
    sha256: str
    files: int
    rows: int


class ExportUpdate(DomainModel):
    """Changes to an export record (None = unchanged)."""

    export_id: str
    status: ExportStatus | None = None
    progress: dict[str, int] | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    storage_key: str | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    estimated_completion: datetime | None = None
    error: str | None = None


class ExportView(BaseModel):
    """An export as the API returns it.

    ``progress``: ``chunks_done``, ``chunks_total`` (an estimate until every stream ended),
    ``bytes_done``, ``bytes_total``. ``download_url`` (completed exports only) stops working
    at ``expires_at`` (EXPORT_LINK_TTL_DAYS, at most 7 days, from the time it was issued);
    the archive itself is deleted at ``archive_expires_at`` (EXPORT_RETENTION_DAYS). While the
    tenant's access is revoked there is no link and ``access_revoked`` says why.
    """

    export_id: str
    tenant_id: str
    workflow_id: str
    export_type: ExportType
    status: ExportStatus
    progress: dict[str, int]
    size_bytes: int | None = None
    sha256: str | None = None
    created_at: datetime
    completed_at: datetime | None = None
    estimated_completion: datetime | None = None
    archive_expires_at: datetime | None = None
    download_url: str | None = None
    expires_at: datetime | None = None
    error: str | None = None
    requested_by: str
    access_revoked: str | None = None


class ExportStarted(BaseModel):
    """The 202 answer of an export request; ``estimated_completion`` is UTC ISO 8601."""

    export_id: str
    workflow_id: str
    tenant_id: str
    status: str = "queued"
    estimated_completion: str


# -- workflow results -------------------------------------------------------------------------


class ExportResult(BaseModel):
    """Result of a completed export; ``expires_at`` (ISO 8601) is when the archive is
    deleted."""

    export_id: str
    tenant_id: str
    size_bytes: int
    sha256: str
    rows: int
    files: int
    expires_at: str


class ExportProgress(OperationProgress):
    """The export's ``progress``: chunks done/total (the total estimated until each stream
    ended) and bytes done/total."""

    export_id: str
    chunks_done: int
    chunks_total: int
    bytes_done: int
    bytes_total: int

    def counts(self) -> dict[str, int]:
        """The four counts, as an export record's ``progress``."""
        return {
            "chunks_done": self.chunks_done,
            "chunks_total": self.chunks_total,
            "bytes_done": self.bytes_done,
            "bytes_total": self.bytes_total,
        }
