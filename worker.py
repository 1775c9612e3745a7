"""Temporal worker: registers every lifecycle workflow and activity.

Run ``python worker.py`` (or ``tenantctl worker``); configuration from the environment (see
``.env.example``). Any number of worker processes may run against one task queue.
"""

from __future__ import annotations

import asyncio
import compileall
import contextlib
import inspect
import logging
import signal
import socket
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.billing import BillingActivities, make_stripe_client
from activities.deletion import DeletionActivities
from activities.events import EventActivities
from activities.exports import ExportActivities
from activities.plan_changes import PlanChangeActivities
from activities.plan_migrations import PlanMigrationActivities
from activities.provisioning import ProvisioningActivities
from activities.purge import PurgeActivities
from activities.reconciliation import ReconciliationActivities
from activities.tenants import TenantActivities
from activities.usage import UsageActivities
from lifecycle.client.lifecycle import LifecycleClient, connect_temporal
from lifecycle.client.reconciliation import ensure_schedule
from lifecycle.config import Settings
from lifecycle.domain.errors import ConfigError
from lifecycle.domain.exports import assembly_task_queue
from lifecycle.logs import configure_logging
from lifecycle.persistence.deletion import DeletionRepository
from lifecycle.persistence.engine import Sessions, control_plane_engine, migrate
from lifecycle.persistence.events import EventRepository
from lifecycle.persistence.exports import ExportRepository
from lifecycle.persistence.plan_migrations import PlanMigrationRepository
from lifecycle.persistence.rate_limits import BILLING_WRITES, RateLimiter
from lifecycle.persistence.tenants import TenantRepository
from lifecycle.storage.datamap import load_datamap
from lifecycle.storage.exports import ExportStorage, s3_options
from lifecycle.storage.stores import find_unmapped
from workflows.deletion import DeletionWorkflow
from workflows.downgrade import DowngradeWorkflow
from workflows.events import EventDeliveryWorkflow
from workflows.export import ExportRetentionWorkflow, ExportWorkflow
from workflows.onboarding import OnboardingWorkflow
from workflows.plan_migration import PlanMigrationWorkflow
from workflows.reactivation import ReactivationWorkflow
from workflows.reconciliation import ReconciliationWorkflow
from workflows.suspension import PauseWorkflow, PaymentFailureWorkflow, SuspensionWorkflow
from workflows.trials import TrialWorkflow
from workflows.upgrade import UpgradeWorkflow

WORKFLOWS = [
    OnboardingWorkflow,
    UpgradeWorkflow,
    DowngradeWorkflow,
    DeletionWorkflow,
    ReactivationWorkflow,
    SuspensionWorkflow,
    PauseWorkflow,
    PaymentFailureWorkflow,
    TrialWorkflow,
    ExportWorkflow,
    ExportRetentionWorkflow,
    ReconciliationWorkflow,
    PlanMigrationWorkflow,
    EventDeliveryWorkflow,
]
#: Modules pydantic loads lazily while validating workflow inputs (EmailStr): pass them
#: through the sandbox like the models that use them.
PASSTHROUGH_MODULES = ("email_validator", "idna")


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every worker (and the replayer) runs workflows in."""
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
    )


def warm_bytecode(*workflow_classes: type) -> None:
    """Write the bytecode cache (``__pycache__/*.pyc``) of the modules defining
    ``workflow_classes``, when missing or stale.

    The sandbox imports a workflow's module afresh for every workflow instance it creates:
    each new run, and each run evicted from the sticky cache and replayed. With no ``.pyc``
    (``PYTHONDONTWRITEBYTECODE=1``, set in many container images and on CI machines) every
    such import compiles the source: 43% of the worker's CPU with 10,000 deletions in flight.
    ``compileall`` writes the cache whatever that variable says; a read-only directory only
    costs that speed, and is logged.
    """
    paths = sorted({inspect.getfile(cls) for cls in workflow_classes})
    if not all(compileall.compile_file(path, quiet=2) for path in paths):
        logging.getLogger(__name__).warning(
            "could not write the bytecode cache of %s: every workflow instance compiles its "
            "module (slower, not wrong)",
            ", ".join(paths),
        )


def export_activities(settings: Settings, repository: TenantRepository) -> ExportActivities:
    """The export activities over EXPORT_STORAGE and the data map of DATA_MAP_PATH.

    Raises ConfigError when DATA_MAP_PATH is set and the data map is invalid.
    """
    datamap = load_datamap(settings.data_map_path) if settings.data_map_path else None
    return ExportActivities(
        ExportStorage.from_settings(settings),
        ExportRepository(repository.sessions),
        datamap,
        s3_options(settings),
    )


def build_activities(
    settings: Settings, repository: TenantRepository, exports: ExportActivities | None = None
) -> list[Callable[..., Any]]:
    """Every activity, wired to the real clients named in ``settings`` (``exports``: the
    export activities, built from ``settings`` when None).

    Raises ConfigError when DATA_MAP_PATH is set and the data map is invalid.
    """
    exports = exports or export_activities(settings, repository)
    stripe_key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
    tenants = TenantActivities(repository)
    stripe_client = make_stripe_client(stripe_key, settings.stripe_api_base)
    rate = settings.billing_rate_limit
    limiter = RateLimiter(repository.sessions, BILLING_WRITES, rate) if rate else None
    billing = BillingActivities(stripe_client, limiter)
    plan_migrations = PlanMigrationActivities(PlanMigrationRepository(repository))
    reconciliation = ReconciliationActivities(settings, repository, stripe_client)
    plan_changes = PlanChangeActivities(repository)
    usage = UsageActivities(repository)
    provisioning = ProvisioningActivities(repository)
    deletion = DeletionActivities(settings, DeletionRepository(repository))
    purge = PurgeActivities(settings)
    events = EventActivities(EventRepository(repository.sessions), settings.event_subscribers())
    return [
        tenants.get_tenant,
        tenants.create_tenant,
        tenants.transition_tenant,
        tenants.set_dunning,
        tenants.record_operation,
        billing.start_subscription,
        billing.cancel_subscription,
        billing.change_price,
        billing.current_period,
        billing.resume_subscription,
        billing.pause_collection,
        billing.has_payment_method,
        billing.schedule_price_change,
        billing.release_schedule,
        billing.delete_customer,
        plan_changes.set_pending_plan_change,
        plan_migrations.count_migration_tenants,
        plan_migrations.migration_batch,
        plan_migrations.record_migration_failures,
        usage.current_usage,
        provisioning.provision_entitlements,
        deletion.resolve_plan,
        deletion.set_legal_hold,
        deletion.begin_purge,
        deletion.complete_purge,
        deletion.record_tenant_event,
        purge.count_tenant_data,
        purge.list_purge_stores,
        purge.list_purge_levels,
        purge.purge_store,
        purge.purge_exports,
        purge.verify_purge,
        *exports.activities(),
        reconciliation.billing_page,
        reconciliation.compare_billing,
        reconciliation.record_drift,
        reconciliation.attach_subscription,
        events.open_event_deliveries,
        events.deliver_event,
        events.fail_event_delivery,
    ]


ASSEMBLY_HEARTBEAT_SECONDS = 1


class LifecycleWorker:
    """A worker process's Temporal workers, run and shut down as one (``run``, ``shutdown``,
    ``async with``): every workflow and activity on TEMPORAL_TASK_QUEUE, and the export
    assemblies that run beside their chunks on :func:`assembly_task_queue` with slots of
    their own (an assembly waiting for chunks never holds a slot a chunk needs)."""

    def __init__(self, *workers: Worker) -> None:
        self.workers = workers
        self._stack = contextlib.AsyncExitStack()

    async def run(self) -> None:
        """Poll every queue until :meth:`shutdown`; a worker that fails shuts the others
        down (cancelling ``Worker.run`` shuts that worker down) and its error is raised."""
        runs = [asyncio.create_task(worker.run()) for worker in self.workers]
        try:
            await asyncio.gather(*runs)
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)

    async def shutdown(self) -> None:
        """Stop polling; running activities get the graceful shutdown timeout to finish."""
        await asyncio.gather(*(worker.shutdown() for worker in self.workers))

    async def __aenter__(self) -> LifecycleWorker:
        for worker in self.workers:
            await self._stack.enter_async_context(worker)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._stack.__aexit__(*exc)


def assembly_worker(
    client: Client, task_queue: str, exports: ExportActivities, slots: int, grace: timedelta
) -> Worker:
    """The worker of the export assemblies beside their chunks (``exports.assemble_export``
    on ``assembly_task_queue(task_queue)``), at most ``slots`` at once; ``grace``: the
    graceful shutdown timeout. Heartbeats reach the server at least every
    ASSEMBLY_HEARTBEAT_SECONDS (the SDK's throttle would otherwise hold them for 0.8 of the
    60 s heartbeat timeout): a waiting assembly learns within that time that its export
    failed or was cancelled, since a cancellation arrives with a heartbeat's response."""
    return Worker(
        client,
        task_queue=assembly_task_queue(task_queue),
        activities=[exports.assemble_export],
        max_concurrent_activities=slots,
        max_heartbeat_throttle_interval=timedelta(seconds=ASSEMBLY_HEARTBEAT_SECONDS),
        graceful_shutdown_timeout=grace,
    )


def build_worker(
    client: Client, settings: Settings, repository: TenantRepository
) -> LifecycleWorker:
    """The workers for ``settings.temporal_task_queue`` (:class:`LifecycleWorker`);
    MAX_CONCURRENT_LIFECYCLE_JOBS bounds the activities running at once on each queue."""
    warm_bytecode(*WORKFLOWS)
    exports = export_activities(settings, repository)
    slots = settings.max_concurrent_lifecycle_jobs
    grace = timedelta(seconds=settings.worker_graceful_shutdown_seconds)
    return LifecycleWorker(
        Worker(
            client,
            task_queue=settings.temporal_task_queue,
            workflows=WORKFLOWS,
            workflow_runner=workflow_runner(),
            activities=build_activities(settings, repository, exports),
            max_concurrent_activities=slots,
            max_concurrent_local_activities=slots,
            max_cached_workflows=settings.worker_max_cached_workflows,
            graceful_shutdown_timeout=grace,
        ),
        assembly_worker(client, settings.temporal_task_queue, exports, slots, grace),
    )


def sdk_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime exporting the SDK's own metrics (task latencies, slots, polls) on
    ``SDK_METRICS_HOST:SDK_METRICS_PORT`` in Prometheus format; None when the port is 0 (the
    default, so that any number of workers run on one host).

    Raises:
        ConfigError: the port cannot be bound (another worker on this host has it), naming
            SDK_METRICS_PORT.
    """
    if not settings.sdk_metrics_port:
        return None
    host, port = settings.sdk_metrics_host, settings.sdk_metrics_port
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(
                f"SDK_METRICS_PORT={port}: cannot bind {host}:{port} ({exc.strerror}); another "
                "worker on this host has it. Give each worker its own SDK_METRICS_PORT, or 0 "
                "to turn the SDK metrics off"
            ) from exc
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))


async def warn_unmapped(settings: Settings) -> list[str]:
    """Log a warning naming every table of the data map's databases that holds tenant data
    outside the map (``tenantctl datamap check`` lists them too); returns the warnings.

    Never raises: a worker starts even when an application database is down at that moment.
    """
    if settings.data_map_path is None:
        return []
    log = logging.getLogger(__name__)
    try:
        unmapped = await find_unmapped(load_datamap(settings.data_map_path), s3_options(settings))
    except ConfigError as exc:
        log.warning("data map discovery skipped: %s", exc)
        return [str(exc)]
    warnings = [
        f"table {u.store} holds tenant data ({u.why}) but is not in the data map "
        f"{settings.data_map_path}: purges of its tenants will fail verification and issue no "
        "certificate until it is mapped or listed under [[ignore]] with a reason"
        for u in unmapped
    ]
    for text in warnings:
        log.warning("%s", text)
    return warnings


async def run_worker(settings: Settings) -> None:
    """Migrate the control-plane database, make sure the export bucket exists, warn about
    unmapped tables, connect, relay new lifecycle events to their delivery workflows (with
    EVENT_WEBHOOK_URLS or PROVISIONING_WEBHOOK_URL) and poll until cancelled or until
    SIGTERM/SIGINT, which shuts down gracefully: polling stops and running activities get
    WORKER_GRACEFUL_SHUTDOWN_SECONDS to finish (or to heartbeat their cancellation) before they
    are cancelled.

    Raises ConfigError (SDK metrics port taken, invalid data map) and connection errors.
    """
    runtime = sdk_runtime(settings)
    engine = control_plane_engine(settings, retried=True)
    await migrate(engine)
    await ExportStorage.from_settings(settings).ensure_bucket()
    await warn_unmapped(settings)
    client = await connect_temporal(settings, runtime)
    repository = TenantRepository(Sessions(engine))
    worker = build_worker(client, settings, repository)
    try:
        if await ensure_schedule(client, settings):
            logging.getLogger(__name__).info("created the billing reconciliation schedule")
    except RPCError as exc:  # e.g. a server without Schedules: the worker still serves
        logging.getLogger(__name__).warning("billing reconciliation schedule not created: %s", exc)
    log = logging.getLogger(__name__)
    loop = asyncio.get_running_loop()
    stopping: list[asyncio.Task[None]] = []

    def stop(signum: int) -> None:
        if stopping:
            return
        log.info(
            "%s: stopping; running activities get %ss to finish",
            signal.Signals(signum).name,
            settings.worker_graceful_shutdown_seconds,
        )
        stopping.append(asyncio.create_task(worker.shutdown()))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    log.info(
        "worker polling task queue %s on %s", settings.temporal_task_queue, settings.temporal_target
    )
    relay = None
    if settings.event_subscribers():  # the transactional outbox's relay: starts the deliveries
        events = LifecycleClient(settings, client, repository).outbound_events
        relay = asyncio.create_task(events.relay(settings.event_dispatch_interval_seconds))
    try:
        await worker.run()
    finally:
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        if stopping:
            await stopping[0]
        await engine.dispose()


def main() -> int:
    """``python worker.py``: run a worker; exit 2 on a configuration error, with a one-line
    message naming the setting instead of a traceback."""
    try:
        settings = Settings()
    except ValidationError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings)
    try:
        asyncio.run(run_worker(settings))
    except ConfigError as exc:
        logging.getLogger(__name__).error("configuration error: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
