"""Export activities (GDPR Art. 15/20): plan the chunks, write one chunk, assemble the ZIP,
discard staging, delete an expired archive, and keep the export record current.

Memory stays bounded whatever the tenant's size: rows are read in keyset pages of about
PAGE_BYTES, deflated in 1 MiB blocks (a few in flight), files and parts stream in 1 MiB
blocks, and writers hold at most one S3 part. Chunks write finished ZIP member data and the
assembly only joins it (``lifecycle.storage.zipmember``).
Every chunk and the archive end with a sidecar in export storage (see
``lifecycle.storage.exports``): a retry after a crash returns it and never redoes the work.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import json
import math
import zipfile
from collections.abc import AsyncIterator
from typing import Any

import orjson
from temporalio import activity
from temporalio.exceptions import ApplicationError
from zlib_ng import zlib_ng

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
from lifecycle.storage.cache import cache_store_name
from lifecycle.storage.datamap import DataMap
from lifecycle.storage.exports import ExportStorage
from lifecycle.storage.jsonl import decode_value, encode_value, row_encoder
from lifecycle.storage.objectstore import ObjectStore, ObjectWriter, S3Options
from lifecycle.storage.stores import TenantStores, storage_store_name, table_store_name
from lifecycle.storage.zipmember import ArchiveWriter, MemberWriter, Sha256, write_all

PAGE_BYTES = 1024 * 1024  # target encoded bytes per keyset page (memory bound)
MAX_PAGE_ROWS = 5000
SAMPLE_ROWS = 100  # rows sampled per table to estimate bytes per row when planning
CACHE_KEY_BYTES = 256  # estimated JSON Lines bytes per cache key when planning
POLL_SECONDS = (0.02, 0.5)  # an assembly beside its chunks polls staging for their sidecars


def part_name(stream: int, seq: int) -> str:
    return f"{stream:03d}/{seq:06d}"


async def put_bytes(store: ObjectStore, key: str, data: bytes) -> None:
    async with store.writer(key) as out:
        out.write(data)


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

    def activities(self) -> list[Any]:
        """Every export activity, bound to this instance (what a worker registers)."""
        return [
            self.plan_export,
            self.export_chunk,
            self.assemble_export,
            self.discard_staging,
            self.delete_export,
            self.record_export,
        ]

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
        """Count each stream's rows or files and estimate its output bytes and chunks; a
        table estimated at more than one chunk becomes parts of consecutive primary-key
        ranges of equal row counts (:meth:`TenantStores.split_keys`), one stream each.

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
                encode = row_encoder(stores.table(entry))
                per_row = sum(len(encode(r)) for r in sample) / len(sample) if sample else 0
                dialect = stores.engines[entry.database].dialect
                name = table_store_name(entry)
                columns = {
                    c.name: str(c.type.compile(dialect=dialect))
                    for c in stores.table(entry).columns
                }
                # a table of several chunks is split into key ranges exported at once
                parts = min(rows, math.ceil(rows * per_row / data.chunk_bytes))
                every = math.ceil(rows / parts) if parts > 1 else rows
                bounds = [
                    self._cursor(key)
                    for key in (
                        await stores.split_keys(entry, data.data_key, every, activity.heartbeat)
                        if parts > 1
                        else []
                    )
                ]
                count = len(bounds) + 1
                for part, (start, until) in enumerate(
                    zip([None, *bounds], [*bounds, None], strict=True), 1
                ):
                    items = every if until is not None else max(0, rows - every * len(bounds))
                    split = count > 1
                    path = f"{name}-{part:05d}-of-{count:05d}" if split else name
                    streams.append(
                        self._stream(
                            streams,
                            data,
                            kind="table",
                            ref=ref,
                            name=name,
                            path=f"tables/{path}.jsonl",
                            items=items,
                            est_bytes=int(items * per_row),
                            columns=columns,
                            part=part if split else None,
                            parts=count if split else None,
                            start=start,
                            until=until,
                        )
                    )
            if data.export_type == "full":
                for ref, cache in enumerate(stores.caches):
                    if not cache.entry.export:
                        continue
                    activity.heartbeat(f"cache[{ref}]")
                    keys = await cache.count(data.data_key)
                    streams.append(
                        self._stream(
                            streams,
                            data,
                            kind="cache",
                            ref=ref,
                            name=cache_store_name(ref),
                            path=f"cache/{ref}.jsonl",
                            items=keys,
                            est_bytes=keys * CACHE_KEY_BYTES,
                        )
                    )
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
        """Write one chunk's part (finished ZIP member data, see ``lifecycle.storage.zipmember``)
        and then its sidecar; heartbeat ``{items, bytes}``.

        A table chunk deflates its rows as the next piece of the table's member, continuing
        the CRC-32 and SHA-256 from the previous chunk's sidecar; a files chunk stores its
        files one after the other with each one's CRC-32 and SHA-256. A chunk whose sidecar
        exists was completed before (the worker crashed before reporting it): the sidecar is
        returned and nothing is rewritten.
        """
        staging = self.storage.staging(data.tenant_id, data.export_id)
        name = part_name(data.stream, data.seq)
        if (done := await staging.get_bytes(f"{name}.json")) is not None:
            return _result(ChunkRecord.model_validate_json(done))
        previous = None
        if data.kind == "table" and data.seq > 0:
            previous = await _record(staging, data.stream, data.seq - 1, "chunk")
        async with (
            self._stores() as stores,
            staging.writer(f"{name}.part", digest=False, scratch=True) as out,
        ):
            if data.kind in ("table", "cache"):
                member = (
                    MemberWriter(out, previous.crc32 or 0, Sha256(previous.sha_state))
                    if previous
                    else MemberWriter(out)
                )
                if data.kind == "table":
                    after, items, finished = await self._write_rows(stores, data, member)
                else:
                    after, items, finished = await self._write_cache(stores, data, member)
                await member.finish(last=finished)
                files: list[FileEntry] = []
                size, crc, sha = member.raw, member.crc32, member.sha
            else:
                after, files, finished = await self._write_files(stores, data, out)
                items, size, crc, sha = len(files), sum(f.size for f in files), None, None
        record = ChunkRecord(
            stream=data.stream,
            seq=data.seq,
            after=after,
            items=items,
            bytes=size,
            sha256=sha.hexdigest() if sha else None,
            done=finished,
            files=files,
            member=True,
            part_bytes=out.size,
            part_crc32=out.crc32,
            crc32=crc,
            sha_state=sha.state() if sha else None,
        )
        await put_bytes(staging, f"{name}.json", record.model_dump_json().encode())
        fault_point("export.after_chunk")
        return _result(record)

    async def _write_rows(
        self, stores: TenantStores, data: ChunkInput, member: MemberWriter
    ) -> tuple[Any, int, bool]:
        """Rows after the cursor (and up to the part's last key), in primary-key order, until
        the next row would pass ``max_bytes`` of JSON Lines; returns (cursor, rows, stream
        ended)."""
        entry = stores.datamap.tables[data.ref]
        pk = stores.primary_key(entry)
        cursor, until = self._key(pk, data.after), self._key(pk, data.until)
        rows, page_rows = 0, 100
        encode = row_encoder(stores.table(entry))
        while True:
            page = await stores.fetch_page(entry, data.data_key, cursor, page_rows, until)
            lines = [encode(row) for row in page]
            batch: list[bytes] = []
            pending = member.raw
            full = False
            for row, line in zip(page, lines, strict=True):
                if pending > 0 and pending + len(line) > data.max_bytes:
                    full = True
                    break
                batch.append(line)
                pending += len(line)
                cursor = [row[c.name] for c in pk]
                rows += 1
            await member.write(b"".join(batch))
            activity.heartbeat({"items": rows, "bytes": member.raw})
            if full:
                return self._cursor(cursor), rows, False
            if len(page) < page_rows:
                return self._cursor(cursor), rows, True
            widest = max(len(line) for line in lines)
            page_rows = max(1, min(MAX_PAGE_ROWS, PAGE_BYTES // widest))

    @staticmethod
    async def _write_cache(
        stores: TenantStores, data: ChunkInput, member: MemberWriter
    ) -> tuple[Any, int, bool]:
        """Every key of the tenant in cache store ``data.ref`` as one JSON Lines record each
        (key, type, value, TTL: :meth:`CacheStore.records`), in one chunk: keys are read by
        SCAN, which has no cursor that survives a retry, so the chunk is redone whole."""
        keys = 0
        async for record in stores.caches[data.ref].records(data.data_key):
            await member.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            keys += 1
            if keys % 500 == 0:
                activity.heartbeat({"items": keys, "bytes": member.raw})
        return None, keys, True

    @staticmethod
    def _key(pk: list[Any], encoded: Any) -> list[Any] | None:
        """Primary-key values from their JSON form (:meth:`_cursor`); None stays None."""
        if encoded is None:
            return None
        return [decode_value(c.type, v) for c, v in zip(pk, encoded, strict=True)]

    @staticmethod
    def _cursor(values: list[Any] | None) -> Any:
        return None if values is None else [encode_value(v) for v in values]

    async def _write_files(
        self, stores: TenantStores, data: ChunkInput, out: ObjectWriter
    ) -> tuple[Any, list[FileEntry], bool]:
        """Files after the cursor key, stored one after the other in the part (each one's
        SHA-256 and CRC-32 taken as it is copied), until the next file would pass
        ``max_bytes``; returns (cursor, files in order, stream ended)."""
        store = stores.storage(data.ref, data.data_key)
        after: str | None = data.after
        files: list[FileEntry] = []
        async with contextlib.aclosing(store.list(start_after=after)) as listing:
            async for key, size in listing:
                if out.size > 0 and out.size + size > data.max_bytes:
                    return after, files, False
                copy = _StoredCopy(out)
                async for block in store.read(key):
                    await asyncio.to_thread(copy.write, block)
                    await out.drain()
                files.append(
                    FileEntry(
                        key=key, size=copy.size, sha256=copy.sha.hexdigest(), crc32=copy.crc32
                    )
                )
                after = key
                activity.heartbeat({"items": len(files), "bytes": out.size})
        return after, files, True

    # -- archive ---------------------------------------------------------------------------

    @activity.defn
    async def assemble_export(self, data: AssembleInput) -> ArchiveResult:
        """Join the chunks' finished members into the ZIP (a local header from each member's
        CRC-32 and sizes, then its parts byte for byte: no re-compression, no checksum pass),
        then ``manifest.json`` and the central directory (ZIP64 as needed); the archive's
        SHA-256 is taken as it streams out, to a non-seekable writer, never held in memory.

        With ``data.chunks`` None the assembly runs while the chunks are written: it waits
        for each sidecar in turn (polling staging, heartbeating), copies a files chunk as
        soon as it is there and a table's member once its last chunk is.

        Raises non-retryable ``MissingChunk`` (a sidecar is gone), ``ChecksumMismatch`` (a
        part's length or CRC-32 differs from its sidecar) or ``LegacyChunks`` (parts written before
        the member format, by an older worker: export again).
        """
        archives = self.storage.archives(data.tenant_id)
        sidecar = f"{data.export_id}.json"
        if (done := await archives.get_bytes(sidecar)) is not None:
            return ArchiveResult.model_validate_json(done)
        staging = self.storage.staging(data.tenant_id, data.export_id)
        entries: list[dict[str, Any]] = []
        async with archives.writer(self.storage.archive_name(data.export_id)) as out:
            archive = ArchiveWriter(out, data.generated_at.timetuple()[:6])
            try:
                counts: list[int | None] = [None] * len(data.streams)
                if data.chunks is not None:
                    counts = list(data.chunks)
                for stream, count in zip(data.streams, counts, strict=True):
                    records = _records(staging, stream.index, count, archive)
                    if stream.kind in ("table", "cache"):
                        member = [record async for record in records]
                        entries.append(await self._add_table(archive, staging, stream, member))
                    else:
                        entries += await self._add_files(archive, staging, stream, records)
            except BaseException:
                archive.abandon()
                raise
            manifest = {
                "export_id": data.export_id,
                "tenant_id": data.tenant_id,
                "export_type": data.export_type,
                "generated_at": data.generated_at.isoformat(),
                "files": entries,
            }
            info = zipfile.ZipInfo("manifest.json", archive.date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.zip.writestr(info, json.dumps(manifest, indent=2, ensure_ascii=False))
            archive.close()
            await out.drain()
        result = ArchiveResult(
            key=self.storage.archive_key(data.tenant_id, data.export_id),
            size_bytes=out.size,
            sha256=out.sha256,
            files=sum(1 for e in entries if "rows" not in e and "keys" not in e),
            rows=sum(e.get("rows", 0) for e in entries),
        )
        await put_bytes(archives, sidecar, result.model_dump_json().encode())
        return result

    async def _add_table(
        self,
        archive: ArchiveWriter,
        staging: ObjectStore,
        stream: StreamPlan,
        records: list[ChunkRecord],
    ) -> dict[str, Any]:
        """One JSON Lines member (a table's rows or a cache store's keys): its chunks'
        DEFLATE pieces in chunk order."""
        last = records[-1]
        size = sum(r.bytes for r in records)
        header = archive.member(
            stream.path,
            deflated=True,
            crc32=last.crc32 or 0,
            size=size,
            compressed=sum(r.part_bytes for r in records),
        )
        await asyncio.to_thread(archive.out.write, header)
        for record in records:
            await _copy_part(archive, staging, record, [])
        entry: dict[str, Any] = {
            "path": stream.path,
            "size_bytes": size,
            "rows": sum(r.items for r in records),
            "sha256": last.sha256,
            "store": stream.name,
            "columns": stream.columns,
        }
        if stream.part is not None:
            entry["part"], entry["parts"] = stream.part, stream.parts
        if stream.kind == "cache":
            entry["keys"] = entry.pop("rows")
            del entry["columns"]
        return entry

    async def _add_files(
        self,
        archive: ArchiveWriter,
        staging: ObjectStore,
        stream: StreamPlan,
        records: AsyncIterator[ChunkRecord],
    ) -> list[dict[str, Any]]:
        """One stored member per file: its local header inserted where the file starts in
        the part, as the part is copied."""
        entries = []
        async for record in records:
            members = [(stream.path + file.key, file) for file in record.files]
            await _copy_part(archive, staging, record, members)
            entries += [
                {
                    "path": path,
                    "size_bytes": file.size,
                    "sha256": file.sha256,
                    "store": stream.name,
                }
                for path, file in members
            ]
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


def _result(record: ChunkRecord) -> ChunkResult:
    return ChunkResult(**record.model_dump(include=set(ChunkResult.model_fields)))


async def _records(
    staging: ObjectStore, stream: int, count: int | None, archive: ArchiveWriter
) -> AsyncIterator[ChunkRecord]:
    """The sidecars of ``stream``'s ``count`` chunks in order; ``count`` None: each one
    awaited until it appears, up to the one marked done (the chain's last)."""
    seq = 0
    while count is None or seq < count:
        record = await _record(staging, stream, seq, "assembly", archive if count is None else None)
        yield record
        seq += 1
        if count is None and record.done:
            return


async def _record(
    staging: ObjectStore,
    stream: int,
    seq: int,
    reader: str,
    follow: ArchiveWriter | None = None,
) -> ChunkRecord:
    """The sidecar of chunk ``seq`` of ``stream``, in the member format. With ``follow`` (the
    archive an assembly beside the chunks writes) a missing sidecar is awaited: staging is
    polled from POLL_SECONDS[0], doubling up to POLL_SECONDS[1], with a heartbeat each time,
    so a cancelled export ends the wait at the next poll."""
    name = f"{part_name(stream, seq)}.json"
    delay = POLL_SECONDS[0]
    while (raw := await staging.get_bytes(name)) is None and follow is not None:
        activity.heartbeat({"bytes": follow.out.size, "waiting_for": name})
        await asyncio.sleep(delay)
        delay = min(delay * 2, POLL_SECONDS[1])
    if raw is None:
        raise ApplicationError(
            f"chunk {seq} of stream {stream} is missing from staging ({reader})",
            type="MissingChunk",
            non_retryable=True,
        )
    record = ChunkRecord.model_validate_json(raw)
    if not record.member:
        raise ApplicationError(
            f"chunk {seq} of stream {stream} was written by an older worker (plain parts, "
            "not ZIP members): start the export again",
            type="LegacyChunks",
            non_retryable=True,
        )
    return record


class _StoredCopy:
    """Copies a file into a part (from a worker thread), taking its SHA-256 and CRC-32."""

    def __init__(self, out: ObjectWriter) -> None:
        self.out, self.sha, self.crc32, self.size = out, hashlib.sha256(), 0, 0

    def write(self, block: bytes) -> None:
        self.sha.update(block)
        self.crc32 = zlib_ng.crc32(block, self.crc32)
        self.size += len(block)
        self.out.write(block)


async def _copy_part(
    archive: ArchiveWriter,
    staging: ObjectStore,
    record: ChunkRecord,
    files: list[tuple[str, FileEntry]],
) -> None:
    """Copy a chunk's part into the archive byte for byte; ``files`` lists the (path, file)
    stored in it, each one's local header written where the file begins. Raises
    ChecksumMismatch when the part's length or CRC-32 is not the sidecar's (damaged staging:
    parts are scratch objects, not fsynced, so an operating-system crash may have lost them)."""
    pending = collections.deque(files)
    left = copied = 0
    crc = 0

    def copy(pieces: list[bytes | memoryview], block: bytes, crc: int) -> int:
        """Write the pieces; the part's CRC-32 continued over ``block`` (a worker thread)."""
        write_all(archive.out, pieces)
        return zlib_ng.crc32(block, crc)

    overflow = False

    def header(path: str, file: FileEntry, offset: int) -> bytes:
        crc = file.crc32 or 0
        return archive.member(
            path, deflated=False, crc32=crc, size=file.size, compressed=file.size, offset=offset
        )

    async for block in staging.read(f"{part_name(record.stream, record.seq)}.part"):
        copied += len(block)
        view = memoryview(block)
        pieces: list[bytes | memoryview] = [] if files else [view]
        position = archive.out.tell()
        while files and view:
            while not left and pending:
                path, file = pending.popleft()
                pieces.append(header(path, file, position))
                position += len(pieces[-1])
                left = file.size
            if not left:
                overflow = True
                break
            take = view[:left]
            pieces.append(take)
            position += len(take)
            left, view = left - len(take), view[len(take) :]
        crc = await asyncio.to_thread(copy, pieces, block, crc)
        await archive.out.drain()
        activity.heartbeat({"bytes": archive.out.size})
    empty: list[bytes] = []  # empty files after the last byte
    while pending and pending[0][1].size == 0:
        path, file = pending.popleft()
        empty.append(header(path, file, archive.out.tell() + sum(map(len, empty))))
    damaged = record.part_crc32 is not None and crc != record.part_crc32
    if copied != record.part_bytes or left or pending or overflow or damaged:
        raise ApplicationError(
            f"part {record.stream}/{record.seq} is {copied} bytes with CRC-32 {crc:08x}, not "
            f"the {record.part_bytes} of its sidecar and files"
            + (f" with CRC-32 {record.part_crc32:08x}" if record.part_crc32 is not None else ""),
            type="ChecksumMismatch",
            non_retryable=True,
        )
    await asyncio.to_thread(write_all, archive.out, empty)
