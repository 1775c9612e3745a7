"""Export activities (GDPR Art. 15/20): plan the chunks, write one chunk, assemble the ZIP,
discard staging, delete an expired archive, and keep the export record current.

Memory stays bounded whatever the tenant's size: rows are read in keyset pages of about
PAGE_BYTES, files and parts stream in 1 MiB blocks, and writers hold at most one S3 part.
Every chunk and the archive end with a sidecar in export storage (see
``lifecycle.storage.exports``): a retry after a crash returns it and never redoes the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import zipfile
from collections.abc import AsyncIterator
from typing import IO, Any, cast

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lifecycle.domain.errors import ConfigError, DataKeyConflict
from lifecycle.domain.exports import (
    ArchiveResult,
    AssembleInput,
    ChunkInput,
    ChunkRecord,
    ChunkResult,
    ExportPlan,
    ExportRef,
    ExportUpdate,
    FileEntry,
    PlanInput,
    StreamPlan,
)
from lifecycle.faults import fault_point
from lifecycle.persistence.exports import ExportRepository
from lifecycle.persistence.tenants import TenantRepository
from lifecycle.storage.datamap import DataMap
from lifecycle.storage.exports import ExportStorage
from lifecycle.storage.jsonl import decode_value, encode_row, encode_value
from lifecycle.storage.objectstore import ObjectStore, ObjectWriter, S3Options
from lifecycle.storage.stores import TenantStores, storage_store_name, table_store_name

PAGE_BYTES = 4 * 1024 * 1024  # target encoded bytes per keyset page (memory bound)
MAX_PAGE_ROWS = 5000
SAMPLE_ROWS = 100  # rows sampled per table to estimate bytes per row when planning


def part_name(stream: int, seq: int) -> str:
    return f"{stream:03d}/{seq:06d}"


async def put_bytes(store: ObjectStore, key: str, data: bytes) -> None:
    async with store.writer(key) as out:
        out.write(data)


async def _write(out: ObjectWriter, data: bytes) -> None:
    """Write off the event loop (hashing and disk I/O), then ship full S3 parts."""
    if data:
        await asyncio.to_thread(out.write, data)
        await out.drain()


class ExportActivities:
    """Export I/O over the data map's stores and the export storage.

    ``datamap`` is None when DATA_MAP_PATH is unset: every export then fails with a
    non-retryable ``ConfigError`` naming the setting.
    """

    def __init__(
        self,
        storage: ExportStorage,
        records: ExportRepository,
        datamap: DataMap | None,
        s3: S3Options | None = None,
    ) -> None:
        self.storage, self.records, self.datamap, self.s3 = storage, records, datamap, s3

    @contextlib.asynccontextmanager
    async def _stores(self) -> AsyncIterator[TenantStores]:
        try:
            if self.datamap is None:
                raise ConfigError("exports need a data map: set DATA_MAP_PATH")
            stores = await TenantStores.open(self.datamap, self.s3)
        except ConfigError as exc:
            raise ApplicationError(str(exc), type="ConfigError", non_retryable=True) from exc
        try:
            yield stores
        finally:
            await stores.close()

    # -- plan ------------------------------------------------------------------------------

    @activity.defn
    async def plan_export(self, data: PlanInput) -> ExportPlan:
        """Count each stream's rows or files and estimate its output bytes and chunks.

        Raises a non-retryable ``DataKeyConflict`` when another live tenant holds the same
        data key (defence in depth behind the unique index: the archive would hold that
        tenant's data, GDPR Art. 15/20 give access to one's own data only).
        """
        holder = await TenantRepository(self.records.sessions).data_key_holder(
            data.data_key, data.tenant_id
        )
        if holder is not None:
            conflict = DataKeyConflict(data.data_key, holder)
            raise ApplicationError(
                f"export of tenant '{data.tenant_id}' refused: {conflict}",
                type="DataKeyConflict",
                non_retryable=True,
            )
        streams: list[StreamPlan] = []
        async with self._stores() as stores:
            for ref, entry in enumerate(stores.datamap.tables):
                # one heartbeat per store: a worker lost while planning is noticed after the
                # heartbeat timeout, not after the 10-minute start-to-close timeout
                activity.heartbeat(ref)
                rows = await stores.count_rows(entry, data.data_key)
                sample = await stores.fetch_page(entry, data.data_key, None, SAMPLE_ROWS)
                per_row = sum(len(encode_row(r)) for r in sample) / len(sample) if sample else 0
                dialect = stores.engines[entry.database].dialect
                name = table_store_name(entry)
                streams.append(
                    self._stream(
                        streams,
                        data,
                        kind="table",
                        ref=ref,
                        name=name,
                        path=f"tables/{name}.jsonl",
                        items=rows,
                        est_bytes=int(rows * per_row),
                        columns={
                            c.name: str(c.type.compile(dialect=dialect))
                            for c in stores.table(entry).columns
                        },
                    )
                )
            if data.export_type == "full":
                for ref in range(len(stores.datamap.storage)):
                    activity.heartbeat(f"storage[{ref}]")
                    files, size = await stores.count_files(ref, data.data_key)
                    streams.append(
                        self._stream(
                            streams,
                            data,
                            kind="files",
                            ref=ref,
                            name=storage_store_name(ref),
                            path=f"files/{ref}/",
                            items=files,
                            est_bytes=size,
                        )
                    )
        return ExportPlan(streams=streams)

    @staticmethod
    def _stream(streams: list[StreamPlan], data: PlanInput, **fields: Any) -> StreamPlan:
        est_chunks = max(1, math.ceil(fields["est_bytes"] / data.chunk_bytes))
        return StreamPlan(index=len(streams), est_chunks=est_chunks, **fields)

    # -- chunks ----------------------------------------------------------------------------

    @activity.defn
    async def export_chunk(self, data: ChunkInput) -> ChunkResult:
        """Write one chunk's part file and then its sidecar; heartbeat ``{items, bytes}``.

        A chunk whose sidecar exists was completed before (the worker crashed before
        reporting it): the sidecar is returned and nothing is rewritten.
        """
        staging = self.storage.staging(data.tenant_id, data.export_id)
        name = part_name(data.stream, data.seq)
        if (done := await staging.get_bytes(f"{name}.json")) is not None:
            record = ChunkRecord.model_validate_json(done)
            return ChunkResult(**record.model_dump(exclude={"files"}))
        async with self._stores() as stores, staging.writer(f"{name}.part") as out:
            if data.kind == "table":
                after, items, finished = await self._write_rows(stores, data, out)
                files: list[FileEntry] = []
            else:
                after, files, finished = await self._write_files(stores, data, out)
                items = len(files)
        record = ChunkRecord(
            stream=data.stream,
            seq=data.seq,
            after=after,
            items=items,
            bytes=out.size,
            sha256=out.sha256,
            done=finished,
            files=files,
        )
        await put_bytes(staging, f"{name}.json", record.model_dump_json().encode())
        fault_point("export.after_chunk")
        return ChunkResult(**record.model_dump(exclude={"files"}))

    async def _write_rows(
        self, stores: TenantStores, data: ChunkInput, out: ObjectWriter
    ) -> tuple[Any, int, bool]:
        """Rows after the cursor, in primary-key order, until the next row would pass
        ``max_bytes``; returns (cursor, rows, stream ended)."""
        entry = stores.datamap.tables[data.ref]
        pk = stores.primary_key(entry)
        after = data.after
        cursor = (
            None
            if after is None
            else [decode_value(c.type, v) for c, v in zip(pk, after, strict=True)]
        )
        rows, page_rows = 0, 100
        while True:
            page = await stores.fetch_page(entry, data.data_key, cursor, page_rows)
            lines = [encode_row(row) for row in page]
            batch: list[bytes] = []
            pending = out.size
            full = False
            for row, line in zip(page, lines, strict=True):
                if pending > 0 and pending + len(line) > data.max_bytes:
                    full = True
                    break
                batch.append(line)
                pending += len(line)
                cursor = [row[c.name] for c in pk]
                rows += 1
            await _write(out, b"".join(batch))
            activity.heartbeat({"items": rows, "bytes": out.size})
            if full:
                return self._cursor(cursor), rows, False
            if len(page) < page_rows:
                return self._cursor(cursor), rows, True
            widest = max(len(line) for line in lines)
            page_rows = max(1, min(MAX_PAGE_ROWS, PAGE_BYTES // widest))

    @staticmethod
    def _cursor(values: list[Any] | None) -> Any:
        return None if values is None else [encode_value(v) for v in values]

    async def _write_files(
        self, stores: TenantStores, data: ChunkInput, out: ObjectWriter
    ) -> tuple[Any, list[FileEntry], bool]:
        """Files after the cursor key, concatenated into the part, until the next file would
        pass ``max_bytes``; returns (cursor, files in order, stream ended)."""
        store = stores.storage(data.ref, data.data_key)
        after: str | None = data.after
        files: list[FileEntry] = []
        async with contextlib.aclosing(store.list(start_after=after)) as listing:
            async for key, size in listing:
                if out.size > 0 and out.size + size > data.max_bytes:
                    return after, files, False
                digest, copied = hashlib.sha256(), 0
                async for block in store.read(key):
                    await asyncio.to_thread(digest.update, block)
                    await _write(out, block)
                    copied += len(block)
                files.append(FileEntry(key=key, size=copied, sha256=digest.hexdigest()))
                after = key
                activity.heartbeat({"items": len(files), "bytes": out.size})
        return after, files, True

    # -- archive ---------------------------------------------------------------------------

    @activity.defn
    async def assemble_export(self, data: AssembleInput) -> ArchiveResult:
        """Stream every part into the ZIP (tables deflated, files stored, ZIP64 as needed),
        verifying each part's SHA-256, then ``manifest.json``; record the archive's SHA-256.

        The ZIP is written to a non-seekable writer (entries carry data descriptors), so the
        archive is hashed as it is written and never held in memory.
        """
        archives = self.storage.archives(data.tenant_id)
        sidecar = f"{data.export_id}.json"
        if (done := await archives.get_bytes(sidecar)) is not None:
            return ArchiveResult.model_validate_json(done)
        staging = self.storage.staging(data.tenant_id, data.export_id)
        stamp = data.generated_at.timetuple()[:6]
        entries: list[dict[str, Any]] = []
        async with archives.writer(self.storage.archive_name(data.export_id)) as out:
            # a write-only stream: zipfile writes data descriptors instead of seeking back
            archive = zipfile.ZipFile(cast(IO[bytes], out), "w", allowZip64=True)
            for stream, count in zip(data.streams, data.chunks, strict=True):
                records = []
                for seq in range(count):
                    raw = await staging.get_bytes(f"{part_name(stream.index, seq)}.json")
                    if raw is None:
                        raise ApplicationError(
                            f"chunk {seq} of {stream.name} is missing from staging",
                            type="MissingChunk",
                            non_retryable=True,
                        )
                    records.append(ChunkRecord.model_validate_json(raw))
                if stream.kind == "table":
                    entries.append(
                        await self._add_table(archive, out, staging, stream, records, stamp)
                    )
                else:
                    entries += await self._add_files(archive, out, staging, stream, records, stamp)
            manifest = {
                "export_id": data.export_id,
                "tenant_id": data.tenant_id,
                "export_type": data.export_type,
                "generated_at": data.generated_at.isoformat(),
                "files": entries,
            }
            info = zipfile.ZipInfo("manifest.json", stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, json.dumps(manifest, indent=2, ensure_ascii=False))
            archive.close()
            await out.drain()
        result = ArchiveResult(
            key=self.storage.archive_key(data.tenant_id, data.export_id),
            size_bytes=out.size,
            sha256=out.sha256,
            files=sum(1 for e in entries if "rows" not in e),
            rows=sum(e.get("rows", 0) for e in entries),
        )
        await put_bytes(archives, sidecar, result.model_dump_json().encode())
        return result

    async def _add_table(
        self,
        archive: zipfile.ZipFile,
        out: ObjectWriter,
        staging: ObjectStore,
        stream: StreamPlan,
        records: list[ChunkRecord],
        stamp: Any,
    ) -> dict[str, Any]:
        """One JSON Lines entry: the table's parts concatenated in chunk order."""
        info = zipfile.ZipInfo(stream.path, stamp)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.file_size = size = sum(r.bytes for r in records)  # lets zipfile pick ZIP64
        digest = hashlib.sha256()
        with archive.open(info, "w") as entry:
            for record in records:
                async for block in _verified(staging, record):
                    await asyncio.to_thread(_feed, entry, digest, block)
                    await out.drain()
                activity.heartbeat({"bytes": out.size})
        return {
            "path": stream.path,
            "size_bytes": size,
            "rows": sum(r.items for r in records),
            "sha256": digest.hexdigest(),
            "store": stream.name,
            "columns": stream.columns,
        }

    async def _add_files(
        self,
        archive: zipfile.ZipFile,
        out: ObjectWriter,
        staging: ObjectStore,
        stream: StreamPlan,
        records: list[ChunkRecord],
        stamp: Any,
    ) -> list[dict[str, Any]]:
        """One stored entry per file, cut from the parts by the sizes in the sidecars."""
        entries = []
        for record in records:
            # each file's SHA-256 is verified below, which covers the part's bytes
            blocks = staging.read(f"{part_name(record.stream, record.seq)}.part")
            leftover = b""
            for file in record.files:
                info = zipfile.ZipInfo(stream.path + file.key, stamp)
                info.compress_type = zipfile.ZIP_STORED
                info.file_size = file.size
                digest, need = hashlib.sha256(), file.size
                with archive.open(info, "w") as entry:
                    while need:
                        block = leftover or await anext(blocks)
                        take, leftover = block[:need], block[need:]
                        await asyncio.to_thread(_feed, entry, digest, take)
                        await out.drain()
                        need -= len(take)
                if digest.hexdigest() != file.sha256:
                    raise ApplicationError(
                        f"{stream.name} file {file.key} changed in staging (SHA-256 mismatch)",
                        type="ChecksumMismatch",
                        non_retryable=True,
                    )
                entries.append(
                    {
                        "path": info.filename,
                        "size_bytes": file.size,
                        "sha256": file.sha256,
                        "store": stream.name,
                    }
                )
            extra = len(leftover)
            async for block in blocks:
                extra += len(block)
            if extra:
                raise ApplicationError(
                    f"{stream.name} part {record.seq} is longer than its files",
                    type="ChecksumMismatch",
                    non_retryable=True,
                )
            activity.heartbeat({"bytes": out.size})
        return entries

    # -- bookkeeping -----------------------------------------------------------------------

    @activity.defn
    async def discard_staging(self, ref: ExportRef) -> int:
        """Delete the export's chunk parts (after assembly, or after a failure)."""
        return await self.storage.delete_staging(ref.tenant_id, ref.export_id)

    @activity.defn
    async def delete_export(self, ref: ExportRef) -> int:
        """Delete an export's archive and staging at the end of its retention and mark the
        record ``expired``; returns the objects deleted (0 when a purge came first)."""
        removed = await self.storage.delete_export(ref.tenant_id, ref.export_id)
        await self.records.update(ExportUpdate(export_id=ref.export_id, status="expired"))
        return removed

    @activity.defn
    async def record_export(self, change: ExportUpdate) -> None:
        """Update the export record (status, progress, result, error)."""
        await self.records.update(change)


def _feed(entry: Any, digest: Any, block: bytes) -> None:
    digest.update(block)
    entry.write(block)


async def _verified(staging: ObjectStore, record: ChunkRecord) -> AsyncIterator[bytes]:
    """Stream a chunk's part, raising ChecksumMismatch at the end when its size or SHA-256
    differs from the sidecar (staging damaged between the chunk and the assembly)."""
    digest, size = hashlib.sha256(), 0
    async for block in staging.read(f"{part_name(record.stream, record.seq)}.part"):
        digest.update(block)
        size += len(block)
        yield block
    if size != record.bytes or digest.hexdigest() != record.sha256:
        raise ApplicationError(
            f"part {record.stream}/{record.seq} does not match its sidecar (size or SHA-256)",
            type="ChecksumMismatch",
            non_retryable=True,
        )
