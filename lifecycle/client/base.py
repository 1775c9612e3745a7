"""What every feature service of the client shares: the settings, the Temporal client, the
control-plane repository, and starting a workflow under its deterministic id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig, RPCError, RPCStatusCode, TLSConfig
from temporalio.workflow import UpdateMethodMultiParam

from lifecycle.config import Settings
from lifecycle.domain.errors import ConfigError, StateConflict
from lifecycle.domain.operations import (
    OperationKind,
    OperationStarted,
    search_attributes,
    workflow_id,
)
from lifecycle.persistence.tenants import TenantRepository

Arg = TypeVar("Arg")
Result = TypeVar("Result")

#: How long a status read waits for a running workflow to answer its ``progress`` query.
#: Queries are answered by a worker; with none polling, Temporal would hold the request for
#: its own default (30 s on the dev server) before the recorded progress is returned.
PROGRESS_QUERY_TIMEOUT = timedelta(seconds=2)


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """The TLS configuration of the Temporal connection: mTLS with TEMPORAL_TLS_CERT and
    TEMPORAL_TLS_KEY (PEM files), the server verified with TEMPORAL_TLS_CA (default: the
    system roots); plain TLS when only TEMPORAL_API_KEY or TEMPORAL_TLS_CA is set (Temporal
    Cloud with an API key); False (plaintext) otherwise.

    Raises ConfigError naming the setting when a file cannot be read.
    """
    files: dict[str, bytes | None] = {}
    for name in ("temporal_tls_cert", "temporal_tls_key", "temporal_tls_ca"):
        path = getattr(settings, name)
        try:
            files[name] = path.read_bytes() if path is not None else None
        except OSError as exc:
            raise ConfigError(f"{name.upper()}={path}: {exc.strerror}") from exc
    if not any(files.values()) and settings.temporal_api_key is None:
        return False
    return TLSConfig(
        server_root_ca_cert=files["temporal_tls_ca"],
        client_cert=files["temporal_tls_cert"],
        client_private_key=files["temporal_tls_key"],
    )


async def connect_temporal(
    settings: Settings, runtime: Runtime | None = None, *, bounded: bool = False
) -> Client:
    """Connect to Temporal with the pydantic data converter (shared by worker and client),
    with TLS and the API key of a secured cluster or Temporal Cloud (:func:`temporal_tls`);
    ``runtime`` carries the SDK's telemetry (the worker's Prometheus endpoint).

    ``bounded``: a call, with its retries, gives up after TEMPORAL_RPC_TIMEOUT_SECONDS (the
    API's client, which must answer 503 in time when Temporal is down); the worker keeps the
    SDK's longer default.
    """
    retry = None
    if bounded:
        retry = RetryConfig(
            max_elapsed_time_millis=int(settings.temporal_rpc_timeout_seconds * 1000),
            max_interval_millis=1000,
        )
    api_key = settings.temporal_api_key
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
        runtime=runtime,
        tls=temporal_tls(settings),
        api_key=api_key.get_secret_value() if api_key is not None else None,
        retry_config=retry,
    )


async def task_queue_pollers(client: Client, namespace: str, task_queue: str) -> list[str]:
    """Identities of the workers that polled ``task_queue``'s workflow tasks recently (the
    server forgets a poller about a minute after its last poll). Transient RPC errors are
    retried by the SDK's retry policy; others raise RPCError."""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=namespace,
            task_queue=TaskQueue(name=task_queue),
            task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
        ),
        retry=True,
    )
    return [p.identity for p in response.pollers]


def not_found(exc: RPCError) -> bool:
    """Whether Temporal answered that the workflow (or its run) does not exist."""
    return exc.status == RPCStatusCode.NOT_FOUND


class Core:
    """The parts every feature service uses; one instance per :class:`LifecycleClient`."""

    def __init__(self, settings: Settings, temporal: Client, repository: TenantRepository):
        self.settings, self.temporal, self.repository = settings, temporal, repository

    def handle(self, wid: str) -> WorkflowHandle[Any, Any]:
        """The handle of workflow ``wid`` (its latest run)."""
        return self.temporal.get_workflow_handle(wid)

    async def start(
        self,
        workflow: Any,
        arg: Any,
        *,
        tenant_id: str,
        kind: OperationKind,
        suffix: str | None = None,
        reuse: WorkflowIDReusePolicy = WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_delay: timedelta | None = None,
    ) -> OperationStarted:
        """Start ``workflow`` under its deterministic id; one running run per id.

        Raises :class:`StateConflict` when an operation with this id is already running
        (or, with a reject-duplicate ``reuse`` policy, ever ran).
        """
        wid = workflow_id(tenant_id, kind, suffix)
        try:
            handle = await self.temporal.start_workflow(
                workflow,
                arg,
                id=wid,
                task_queue=self.settings.temporal_task_queue,
                id_reuse_policy=reuse,
                id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
                search_attributes=search_attributes(tenant_id, kind),
                static_summary=f"{kind.value} {tenant_id}",
                start_delay=start_delay,
                rpc_timeout=timedelta(seconds=self.settings.temporal_rpc_timeout_seconds),
            )
        except WorkflowAlreadyStartedError as exc:
            raise StateConflict(
                f"a {kind.value} operation for tenant '{tenant_id}' is already running or "
                f"done (workflow {wid})"
            ) from exc
        return OperationStarted(
            workflow_id=wid, run_id=handle.result_run_id, tenant_id=tenant_id, operation=kind.value
        )


class Service:
    """A feature's part of the client (``lc.plan_changes``, ``lc.deletion``, ...): it works
    through the :class:`Core` it shares with the others."""

    def __init__(self, core: Core) -> None:
        self.core = core

    async def deletion_update(
        self, tenant_id: str, update: UpdateMethodMultiParam[[Any, Arg], Result], arg: Arg
    ) -> Result:
        """Send ``update`` (a handler of the deletion workflow, e.g. ``purge_now``) with
        ``arg`` to ``tenant_id``'s deletion workflow and return its answer.

        Raises StateConflict with the workflow's reason when the update is rejected, or when
        the tenant's deletion workflow is not running.
        """
        wid = workflow_id(tenant_id, OperationKind.DELETION)

        async def ended() -> str:
            return (
                f"tenant '{tenant_id}' is DELETED but its deletion workflow {wid} is not running "
                f"(see GET /operations/{wid})"
            )

        answer: Result = await update_or_conflict(self.core.handle(wid), update, arg, ended)
        return answer


async def update_or_conflict(
    handle: WorkflowHandle[Any, Any],
    update: Any,
    arg: Any,
    ended: Callable[[], Awaitable[str]],
    result_type: type | None = None,
) -> Any:
    """Send ``update`` (a handler, or its name with ``result_type``) with ``arg`` through
    ``handle`` and return the workflow's answer.

    Raises StateConflict with the validator's or handler's reason when the update is
    refused, and with ``await ended()`` when the workflow is not running (an update to a
    closed workflow is "not found")."""
    try:
        return await handle.execute_update(update, arg, result_type=result_type)
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        raise StateConflict(
            cause.message if isinstance(cause, ApplicationError) else str(cause)
        ) from exc
    except RPCError as exc:
        if not not_found(exc):
            raise
        raise StateConflict(await ended()) from exc
