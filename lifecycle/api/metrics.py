"""Prometheus metrics of the control plane, computed from its database at scrape time.

Operations run in any number of worker processes; the ``operations`` and ``tenants`` tables
are the one place that sees them all, so ``/metrics`` on any API instance reports the same
totals. (The Temporal SDK's own worker metrics are served by each worker's SDK runtime on
SDK_METRICS_PORT, see ``worker.py``.)
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from lifecycle.domain.operations import OperationKind
from lifecycle.domain.reconciliation import ReconciliationReport
from lifecycle.domain.states import TenantState
from lifecycle.persistence.tables import DeletionCertificate, Export
from lifecycle.persistence.tenants import TenantRepository

#: Operation duration buckets, seconds: onboarding takes well under a second, a period-end
#: downgrade or a soft delete waits up to 90 days.
DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600, 86400, 7 * 86400, 90 * 86400)
FINISHED = ("completed", "failed", "cancelled")


class _Snapshot(Collector):
    """Metric families computed beforehand (collect() must be synchronous)."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        yield from self.families


async def collect_families(repository: TenantRepository) -> list[Metric]:
    """Read the control plane's aggregates and return the metric families."""
    by_status, durations = await repository.operation_stats(DURATION_BUCKETS)
    started = CounterMetricFamily(
        "lifecycle_operations_started", "Lifecycle operations started", labels=["operation"]
    )
    finished = CounterMetricFamily(
        "lifecycle_operations_finished",
        "Lifecycle operations finished, by outcome (completed, failed, cancelled)",
        labels=["operation", "outcome"],
    )
    running = GaugeMetricFamily(
        "lifecycle_operations_running", "Lifecycle operations running now", labels=["operation"]
    )
    kinds = sorted({kind for kind, _ in by_status})
    for kind in kinds:
        started.add_metric([kind], sum(n for (k, _), n in by_status.items() if k == kind))
        running.add_metric([kind], by_status.get((kind, "running"), 0))
        for outcome in FINISHED:
            finished.add_metric([kind, outcome], by_status.get((kind, outcome), 0))
    duration = HistogramMetricFamily(
        "lifecycle_operation_duration_seconds",
        "Wall time of finished lifecycle operations, timers included",
        labels=["operation"],
    )
    for kind, (cumulative, total, count) in sorted(durations.items()):
        buckets = [(str(b), c) for b, c in zip(DURATION_BUCKETS, cumulative, strict=True)]
        duration.add_metric([kind], [*buckets, ("+Inf", count)], total)
    tenants = GaugeMetricFamily("lifecycle_tenants", "Tenants by lifecycle state", labels=["state"])
    per_state = await repository.count_by_state()
    for state in TenantState:
        tenants.add_metric([state.value], per_state.get(state.value, 0))
    export_bytes, purged_rows = await _export_and_purge_totals(repository)
    exports = CounterMetricFamily(
        "lifecycle_export_bytes", "Bytes of completed GDPR export archives", value=export_bytes
    )
    purged = CounterMetricFamily(
        "lifecycle_purged_rows",
        "Rows deleted by verified purges (from the deletion certificates)",
        value=purged_rows,
    )
    drift = GaugeMetricFamily(
        "lifecycle_billing_drift",
        "Drifts between the control plane and Stripe in the latest billing reconciliation",
        labels=["kind"],
    )
    latest = await repository.latest_operation(OperationKind.RECONCILIATION.value, "completed")
    if latest is not None and latest.result is not None:
        for kind, n in ReconciliationReport.model_validate(latest.result).counts.items():
            drift.add_metric([kind], n)
    return [started, finished, running, duration, tenants, exports, purged, drift]


async def _export_and_purge_totals(repository: TenantRepository) -> tuple[int, int]:
    """Bytes of completed exports (expired ones included: they were produced) and rows
    purged according to the deletion certificates."""
    async with repository.sessions() as session:
        export_bytes = await session.scalar(
            select(func.coalesce(func.sum(Export.size_bytes), 0)).where(
                Export.status.in_(("completed", "expired"))
            )
        )
        purged = 0
        documents = await session.stream_scalars(select(DeletionCertificate.document))
        async for document in documents:
            for counts in document.get("stores", {}).values():
                purged += int(counts.get("before", {}).get("rows", 0))
    return int(export_bytes or 0), purged


async def render_metrics(repository: TenantRepository) -> bytes:
    """The Prometheus text exposition of every control-plane metric."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(await collect_families(repository)))
    return generate_latest(registry)
