"""GDPR export (Art. 15 access, Art. 20 portability): ACTIVE -> EXPORTING -> ACTIVE.

Plan the streams, export each stream as a chain of chunks (one activity per chunk, at most
PARALLEL_STREAMS chains at a time) while the assembly, started with them on its own task queue,
joins each finished chunk into the ZIP, discard the staging, and start the
retention workflow that deletes the archive after EXPORT_RETENTION_DAYS. The tenant returns
to ACTIVE whatever happens (``finally`` under ``asyncio.shield``), before the export is
reported completed or failed. Workflow id
``tenant-<id>-export-<export_id>``: one id per export, so a new export can start while an
old one's retention timer runs; one *running* export per tenant is enforced by the EXPORTING
state's compare-and-set.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityCancellationType, ActivityConfig, ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from activities.exports import ExportActivities
    from lifecycle.domain.exports import (
        ArchiveResult,
        AssembleInput,
        ChunkInput,
        ExportInput,
        ExportProgress,
        ExportRef,
        ExportResult,
        ExportUpdate,
        PlanInput,
        RetentionInput,
        StreamPlan,
        assembly_task_queue,
    )
    from lifecycle.domain.operations import OperationKind, search_attributes, workflow_id
    from lifecycle.domain.states import TenantState
    from workflows.common import RETRY, Operation, call

PARALLEL_STREAMS = 4
#: ``workflow.patched`` id (2026-12-02): a failed or cancelled export returns the tenant to
#: ACTIVE before it reports "failed", so whoever sees "failed" can start the next operation.
ACTIVE_BEFORE_FAILED = "export-active-before-failed"
#: ``workflow.patched`` id (2026-12-03): the retention child carries the search attributes
#: (``TenantId``, ``LifecycleOperation=export``), so ``TenantId="acme"`` finds it in the UI.
RETENTION_SEARCH_ATTRIBUTES = "export-retention-search-attributes"
#: ``workflow.patched`` id (2026-12-03): the files and cache chains start before the table
#: chains, so a tenant's files are copied while its table parts are deflated instead of
#: waiting for a free chain behind them (the archive's member order is the plan's either way).
FILES_FIRST = "export-files-first"
#: ``workflow.patched`` id (2026-12-03): the assembly starts with the chunks, on its own task
#: queue (:func:`assembly_task_queue`), and copies each chunk as it is finished, its members
#: in the order the chains start (files and caches first), instead of starting after the last.
ASSEMBLY_BESIDE_CHUNKS = "export-assembly-beside-chunks"
#: ``workflow.patched`` id (2026-12-03): an export cancelled while activities run is recorded
#: "export cancelled" and ends cancelled (the cancellation reaches the workflow as the
#: activities' ActivityError), and a cancelled export's staging is discarded like a failed one's.
CANCELLED_DISCARDS = "export-cancelled-discards-staging"
#: Rough export rate for the first estimate of the completion time (docs/benchmarks.md).
ESTIMATE_BYTES_PER_SECOND = 10 * 1024 * 1024
CHUNK_OPTIONS = ActivityConfig(
    start_to_close_timeout=timedelta(hours=1),
    heartbeat_timeout=timedelta(seconds=30),
    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
)
ASSEMBLE_OPTIONS = ActivityConfig(
    start_to_close_timeout=timedelta(hours=12),
    heartbeat_timeout=timedelta(seconds=60),
    retry_policy=RetryPolicy(maximum_attempts=5, initial_interval=timedelta(seconds=5)),
    summary="assemble ZIP",
)
#: An assembly beside the chunks is cancelled with them, and the staging is discarded only
#: after it stopped reading. It runs as long as they do, so a worker restarted during the
#: export (a deploy) costs it an attempt: it retries as the chunks do (:data:`RETRY`).
BESIDE_OPTIONS = ASSEMBLE_OPTIONS | ActivityConfig(
    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED, retry_policy=RETRY
)


@workflow.defn
class ExportWorkflow:
    """Export everything a tenant owns in the data map into one ZIP with a manifest."""

    @workflow.init
    def __init__(self, data: ExportInput) -> None:
        self.op = Operation(data.tenant_id, OperationKind.EXPORT, data.actor)
        self.export_id = data.export_id
        self.chunks_done = 0
        self.bytes_done = 0
        self.retention_attributes = False  # patched: the child carries search attributes
        self.files_first = False  # patched: file and cache chains start first
        self.beside = False  # patched: the assembly runs beside the chunks
        self.cancelled_discards = False  # patched: a cancelled export discards its staging
        self.estimates: dict[int, int] = {}  # stream -> chunks (estimated until it ends)
        self.bytes_total = 0

    @workflow.run
    async def run(self, data: ExportInput) -> ExportResult:
        op = self.op
        # asked first, before any local activity of this workflow task (plan_change.settles_steps)
        self.retention_attributes = workflow.patched(RETENTION_SEARCH_ATTRIBUTES)
        self.files_first = workflow.patched(FILES_FIRST)
        self.beside = workflow.patched(ASSEMBLY_BESIDE_CHUNKS)
        self.cancelled_discards = workflow.patched(CANCELLED_DISCARDS)
        ref = ExportRef(tenant_id=data.tenant_id, export_id=data.export_id)
        await op.record("starting")
        try:
            tenant = await op.transition(
                [TenantState.ACTIVE], TenantState.EXPORTING, detail={"export_id": data.export_id}
            )
        except ActivityError as err:  # e.g. another export holds the tenant: recorded failed
            raise await op.fail(err, "export", self._record_failure) from err
        stopped: ActivityError | asyncio.CancelledError | None = None
        try:
            archive = await self._export(data, tenant.data_key)
        except ActivityError as err:
            await asyncio.shield(call(ExportActivities.discard_staging, ref, summary="discard"))
            if not workflow.patched(ACTIVE_BEFORE_FAILED):
                raise await op.fail(err, "export", self._record_failure) from err
            stopped = err
            if self.cancelled_discards and workflow.cancellation_reason() is not None:
                stopped = asyncio.CancelledError()
        except asyncio.CancelledError as err:
            if self.cancelled_discards:
                discard = call(ExportActivities.discard_staging, ref, summary="discard")
                await asyncio.shield(discard)
            if not workflow.patched(ACTIVE_BEFORE_FAILED):
                await asyncio.shield(self._cancelled())
                raise
            stopped = err
        finally:
            await asyncio.shield(
                op.transition(
                    [TenantState.EXPORTING],
                    TenantState.ACTIVE,
                    detail={"export_id": data.export_id},
                )
            )
        if isinstance(stopped, asyncio.CancelledError):
            await asyncio.shield(self._cancelled())
            raise stopped
        if stopped is not None:
            raise await op.fail(stopped, "export", self._record_failure) from stopped
        expires = workflow.now() + timedelta(days=data.retention_days)
        await self._update(
            status="completed",
            size_bytes=archive.size_bytes,
            sha256=archive.sha256,
            storage_key=archive.key,
            completed_at=workflow.now(),
            expires_at=expires,
            progress=self.progress_counts(),
        )
        await workflow.start_child_workflow(
            ExportRetentionWorkflow.run,
            RetentionInput(ref=ref, delete_after_days=data.retention_days),
            id=workflow_id(data.tenant_id, OperationKind.EXPORT, f"{data.export_id}-retention"),
            parent_close_policy=ParentClosePolicy.ABANDON,
            static_summary=f"delete export {data.export_id} after {data.retention_days} days",
            search_attributes=(
                search_attributes(data.tenant_id, OperationKind.EXPORT)
                if self.retention_attributes
                else None
            ),
        )
        return await op.complete(
            ExportResult(
                export_id=data.export_id,
                tenant_id=data.tenant_id,
                size_bytes=archive.size_bytes,
                sha256=archive.sha256,
                rows=archive.rows,
                files=archive.files,
                expires_at=expires.isoformat(),
            )
        )

    async def _export(self, data: ExportInput, data_key: str) -> ArchiveResult:
        ref = ExportRef(tenant_id=data.tenant_id, export_id=data.export_id)
        await self._update(status="running")
        plan = await self.op.step(
            "planning",
            ExportActivities.plan_export,
            PlanInput(
                tenant_id=data.tenant_id,
                export_id=data.export_id,
                data_key=data_key,
                export_type=data.export_type,
                chunk_bytes=data.chunk_bytes,
            ),
            summary="plan chunks",
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(seconds=60),
        )
        self.estimates = {s.index: s.est_chunks for s in plan.streams}
        self.bytes_total = plan.est_bytes
        eta = workflow.now() + timedelta(seconds=plan.est_bytes / ESTIMATE_BYTES_PER_SECOND)
        await self._update(progress=self.progress_counts(), estimated_completion=eta)
        await self.op.record("chunks")
        limit = asyncio.Semaphore(PARALLEL_STREAMS)  # taken in the order the chains start
        order = plan.streams
        if self.files_first:
            order = sorted(plan.streams, key=lambda stream: stream.kind == "table")
        started = {
            stream.index: asyncio.create_task(self._chain(data, data_key, stream, limit))
            for stream in order
        }
        chains = [started[stream.index] for stream in plan.streams]
        jobs: list[asyncio.Task[Any]] = [asyncio.create_task(self._chunks(chains))]
        if self.beside:
            arg = self._assembly(data, order, None)
            queue = assembly_task_queue(workflow.info().task_queue)
            options = BESIDE_OPTIONS | ActivityConfig(task_queue=queue)
            beside = call(ExportActivities.assemble_export, arg, **options)
            jobs.append(asyncio.create_task(beside))
        try:
            done = await asyncio.gather(*jobs)
        except BaseException:
            for task in [*chains, *jobs]:
                task.cancel()
            await asyncio.gather(*chains, *jobs, return_exceptions=True)
            raise
        if self.beside:
            archive: ArchiveResult = done[1]
        else:
            archive = await self.op.step(
                "assemble",
                ExportActivities.assemble_export,
                self._assembly(data, plan.streams, done[0]),
                **ASSEMBLE_OPTIONS,
            )
        await call(ExportActivities.discard_staging, ref, summary="discard staging")
        return archive

    async def _chunks(self, chains: list[asyncio.Task[int]]) -> list[int]:
        """Each chain's number of chunks once all ended; the step becomes ``assemble`` then
        when the assembly runs beside them (it finishes the members left)."""
        counts = list(await asyncio.gather(*chains))
        if self.beside:
            await self.op.record("assemble")
        return counts

    @staticmethod
    def _assembly(
        data: ExportInput, streams: list[StreamPlan], chunks: list[int] | None
    ) -> AssembleInput:
        return AssembleInput(
            tenant_id=data.tenant_id,
            export_id=data.export_id,
            export_type=data.export_type,
            generated_at=workflow.now(),
            streams=streams,
            chunks=chunks,
        )

    async def _chain(
        self, data: ExportInput, data_key: str, stream: StreamPlan, limit: asyncio.Semaphore
    ) -> int:
        """Export one stream chunk after chunk; returns its number of chunks."""
        after: Any = stream.start
        seq = 0
        async with limit:
            while True:
                done = await call(
                    ExportActivities.export_chunk,
                    ChunkInput(
                        tenant_id=data.tenant_id,
                        export_id=data.export_id,
                        data_key=data_key,
                        stream=stream.index,
                        kind=stream.kind,
                        ref=stream.ref,
                        seq=seq,
                        after=after,
                        until=stream.until,
                        max_bytes=data.chunk_bytes,
                    ),
                    **(CHUNK_OPTIONS | {"summary": f"{self._label(stream)} chunk {seq}"}),
                )
                seq, after = seq + 1, done.after
                self.chunks_done += 1
                self.bytes_done += done.bytes
                self.estimates[stream.index] = max(self.estimates[stream.index], seq + 1)
                if done.done:
                    self.estimates[stream.index] = seq
                    workflow.set_current_details(self._details())
                    return seq
                workflow.set_current_details(self._details())

    @staticmethod
    def _label(stream: StreamPlan) -> str:
        """The stream's name in activity summaries: ``app.events part 2/4`` for a part."""
        return (
            stream.name
            if stream.part is None
            else f"{stream.name} part {stream.part}/{stream.parts}"
        )

    async def _record_failure(self, failed: ApplicationError) -> None:
        await self._update(status="failed", error=str(failed), progress=self.progress_counts())

    async def _cancelled(self) -> None:
        await self._update(status="failed", error="export cancelled")

    async def _update(self, **fields: Any) -> None:
        await call(
            ExportActivities.record_export,
            ExportUpdate(export_id=self.export_id, **fields),
            summary=f"record {fields.get('status') or 'progress'}",
        )

    def progress_counts(self) -> dict[str, int]:
        return {
            "chunks_done": self.chunks_done,
            "chunks_total": sum(self.estimates.values()),
            "bytes_done": self.bytes_done,
            "bytes_total": max(self.bytes_total, self.bytes_done),
        }

    def _details(self) -> str:
        p = self.progress_counts()
        mib = p["bytes_done"] / (1024 * 1024)
        return f"export: chunk {p['chunks_done']}/{p['chunks_total']}, {mib:.1f} MiB"

    @workflow.query
    def progress(self) -> ExportProgress:
        """Step, chunks done/total (total estimated until each stream ended) and bytes."""
        return ExportProgress.model_validate(
            {
                "operation": self.op.kind,
                "export_id": self.export_id,
                "step": self.op.current_step,
                **self.progress_counts(),
            }
        )


@workflow.defn
class ExportRetentionWorkflow:
    """Durable timer of EXPORT_RETENTION_DAYS, then the archive is deleted (status expired);
    started by the export workflow as an abandoned child, id ``...-export-<id>-retention``."""

    @workflow.run
    async def run(self, data: RetentionInput) -> int:
        await workflow.sleep(timedelta(days=data.delete_after_days), summary="export retention")
        return await call(ExportActivities.delete_export, data.ref, summary="delete expired export")
