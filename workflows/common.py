"""Activity options and operation bookkeeping shared by every lifecycle workflow."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.tenants import TenantActivities
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.tenants import OperationUpdate, TenantView, TransitionInput

#: Transient failures (database busy, billing 5xx, network) retry with exponential backoff;
#: business errors are raised non-retryable by the activities themselves.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=20,
)
#: Short control-plane and billing calls; a worker that dies mid-activity is detected when
#: this elapses, so it also bounds crash recovery time (long activities heartbeat instead).
TIMEOUT = timedelta(seconds=20)
#: ``workflow.patched`` id of running control-plane steps as local activities (2026-12-01).
LOCAL_BOOKKEEPING = "local-bookkeeping"


async def call(fn: Callable[..., Any], arg: Any, *, summary: str | None = None, **opts: Any) -> Any:
    """Execute activity method ``fn`` with the lifecycle's default timeout and retry policy."""
    opts.setdefault("start_to_close_timeout", TIMEOUT)
    opts.setdefault("retry_policy", RETRY)
    return await workflow.execute_activity_method(fn, arg, summary=summary, **opts)


async def control_plane(fn: Callable[..., Any], arg: Any, *, summary: str | None = None) -> Any:
    """Execute a control-plane activity (a short, idempotent read or write of the lifecycle
    database) as a local activity: the worker runs it inside the current workflow task, so
    it costs one marker event instead of three activity events, a trip through the task
    queue and another workflow task. A replay after a crash may run it again, which is why
    only idempotent steps come here. Executions started before this change keep running it as
    a regular activity (``workflow.patched``); external calls (billing, webhooks, data stores)
    always go through :func:`call`.
    """
    if not workflow.patched(LOCAL_BOOKKEEPING):
        return await call(fn, arg, summary=summary)
    return await workflow.execute_local_activity_method(
        fn, arg, start_to_close_timeout=TIMEOUT, retry_policy=RETRY, summary=summary
    )


async def read_tenant(tenant_id: str) -> TenantView:
    """The tenant's row as a :class:`TenantView` (local activity, see :func:`control_plane`)."""
    return await control_plane(TenantActivities.get_tenant, tenant_id, summary="read tenant")


def idempotency_scope() -> str:
    """``<workflow id>:<run id>``: prefix of the idempotency keys of this run's external
    calls. The same for every attempt and after a worker crash; different for a later run
    under the same (deterministic) workflow id, which must not get the first run's answer.
    """
    info = workflow.info()
    return f"{info.workflow_id}:{info.run_id}"


class Operation:
    """Bookkeeping of one running operation: its step (for the progress query and the
    ``operations`` table) and the audited state transitions it makes."""

    def __init__(self, tenant_id: str, kind: str, actor: str = "system") -> None:
        self.tenant_id, self.kind, self.actor = tenant_id, kind, actor
        self.step = "started"

    @property
    def workflow_id(self) -> str:
        return workflow.info().workflow_id

    @property
    def idempotency_scope(self) -> str:
        return idempotency_scope()

    async def record(self, step: str, status: str = "running", **fields: Any) -> None:
        """Set the current step and mirror it (with ``result``/``error``) to the database
        (an idempotent upsert, run by :func:`control_plane`)."""
        self.step = step
        workflow.set_current_details(f"{self.kind}: {step}")
        update = OperationUpdate(
            workflow_id=self.workflow_id,
            tenant_id=self.tenant_id,
            kind=self.kind,
            status=status,
            step=step,
            **fields,
        )
        await control_plane(TenantActivities.record_operation, update, summary=f"record {step}")

    async def transition(
        self,
        from_states: list[TenantState],
        to_state: TenantState,
        **fields: Any,
    ) -> TenantView:
        """Compare-and-set the tenant's state with an audit row naming this workflow
        (idempotent per workflow, run by :func:`control_plane`)."""
        return await control_plane(
            TenantActivities.transition_tenant,
            TransitionInput(
                tenant_id=self.tenant_id,
                from_states=from_states,
                to_state=to_state,
                operation=self.kind,
                workflow_id=self.workflow_id,
                actor=self.actor,
                **fields,
            ),
            summary=f"{'/'.join(from_states)} -> {to_state}",
        )


def failure(err: ActivityError, operation: str) -> ApplicationError:
    """A non-retryable workflow failure carrying the failed activity's cause and its type
    (e.g. ``StateConflict``, ``CardDeclined``), so the operation's error says what happened."""
    cause = err.cause
    kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
    return ApplicationError(
        f"{operation} failed: {cause or err}", type=kind or "ActivityFailed", non_retryable=True
    )
