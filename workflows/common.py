"""Activity options and operation bookkeeping shared by every lifecycle workflow."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal, TypeVar, Unpack

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    is_cancelled_exception,
)
from temporalio.types import MethodAsyncSingleParam
from temporalio.workflow import ActivityConfig, LocalActivityConfig

with workflow.unsafe.imports_passed_through():
    from activities.deletion import DeletionActivities
    from activities.tenants import TenantActivities
    from lifecycle.domain.states import TenantState
    from lifecycle.domain.tenants import (
        OperationProgress,
        OperationUpdate,
        TenantEvent,
        TenantView,
        TransitionInput,
    )

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
#: Options of every activity; a call overrides some of them (``**ActivityConfig``).
DEFAULTS = ActivityConfig(start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
#: Options of the control-plane steps run as local activities (:func:`control_plane`).
LOCAL_DEFAULTS = LocalActivityConfig(start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
#: ``workflow.patched`` id of running control-plane steps as local activities (2026-12-01).
LOCAL_BOOKKEEPING = "local-bookkeeping"
#: ``workflow.patched`` id of reporting a failed control-plane step as an ``ActivityError``
#: (2026-12-03): temporalio 1.35 hands a failed *local* activity to the workflow as the
#: activity's own error, so the ``except ActivityError`` bookkeeping never ran for them.
LOCAL_FAILURES = "local-activity-failures"
#: ``workflow.patched`` id of recording an operation's step in the transaction of the state
#: transition it goes with (2026-12-03; :meth:`Operation.fold_steps`): one control-plane step
#: instead of a ``record_operation`` and a ``transition_tenant``.
FOLDED_STEPS = "folded-steps"

Arg = TypeVar("Arg")
Result = TypeVar("Result")
Model = TypeVar("Model", bound=BaseModel)
#: An activity method taking one argument (e.g. ``BillingActivities.change_price``): its
#: return type is what :func:`call` and :meth:`Operation.step` return.
Activity = MethodAsyncSingleParam[Any, Arg, Result]
Status = Literal["running", "completed", "failed", "cancelled"]


async def call(
    activity: Activity[Arg, Result], arg: Arg, **config: Unpack[ActivityConfig]
) -> Result:
    """Execute ``activity`` with the lifecycle's default timeout and retry policy
    (:data:`DEFAULTS`), overridden by ``config`` (e.g. ``summary``, ``heartbeat_timeout``)."""
    options: ActivityConfig = {**DEFAULTS, **config}
    return await workflow.execute_activity_method(activity, arg, **options)


async def control_plane(
    activity: Activity[Arg, Result], arg: Arg, *, summary: str | None = None
) -> Result:
    """Execute a control-plane activity (a short, idempotent read or write of the lifecycle
    database) as a local activity: the worker runs it inside the current workflow task, so
    it costs one marker event instead of three activity events, a trip through the task
    queue and another workflow task. A replay after a crash may run it again, which is why
    only idempotent steps come here. Executions started before this change keep running it as
    a regular activity (``workflow.patched``); external calls (billing, webhooks, data stores)
    always go through :func:`call`.
    """
    if not workflow.patched(LOCAL_BOOKKEEPING):
        return await call(activity, arg, summary=summary)
    # asked before the local activity runs, never after it in the same workflow task: a patch
    # marker recorded right after a local activity's marker is met in history before the
    # replaying code asks for it (a nondeterminism error once another worker replays the run)
    wrap_failures = workflow.patched(LOCAL_FAILURES)
    try:
        return await workflow.execute_local_activity_method(
            activity, arg, **(LOCAL_DEFAULTS | {"summary": summary})
        )
    except FailureError as err:
        if isinstance(err, ActivityError) or is_cancelled_exception(err) or not wrap_failures:
            raise  # (an execution from before the patch replays as it ran)
        raise _as_activity_error(err, activity) from err


def _as_activity_error(err: FailureError, activity: Activity[Any, Any]) -> ActivityError:
    """The ``ActivityError`` (cause: ``err``) a regular activity's failure would raise, so one
    ``except ActivityError`` handles control-plane steps and external calls alike."""
    defn = getattr(activity, "__temporal_activity_definition", None)
    name = str(getattr(defn, "name", None) or getattr(activity, "__name__", "local"))
    return ActivityError(
        f"Local activity error: {err}",
        scheduled_event_id=0,
        started_event_id=0,
        identity="",
        activity_type=name,
        activity_id="",
        retry_state=RetryState.NON_RETRYABLE_FAILURE,
    )


async def read_tenant(tenant_id: str) -> TenantView:
    """The tenant's row as a :class:`TenantView` (local activity, see :func:`control_plane`)."""
    return await control_plane(TenantActivities.get_tenant, tenant_id, summary="read tenant")


async def audit_event(
    tenant_id: str, operation: str, detail: dict[str, Any], actor: str = "system"
) -> None:
    """Append an audit row that is not a state change (``operation``, ``actor``, ``detail``)
    under this workflow's id: the ``record_tenant_event`` activity."""
    await call(
        DeletionActivities.record_tenant_event,
        TenantEvent(
            tenant_id=tenant_id,
            operation=operation,
            workflow_id=workflow.info().workflow_id,
            actor=actor,
            detail=detail,
        ),
    )


def idempotency_scope() -> str:
    """``<workflow id>:<run id>``: prefix of the idempotency keys of this run's external
    calls. The same for every attempt and after a worker crash; different for a later run
    under the same (deterministic) workflow id, which must not get the first run's answer.
    """
    info = workflow.info()
    return f"{info.workflow_id}:{info.run_id}"


def failure(err: ActivityError | ApplicationError, operation: str) -> ApplicationError:
    """A non-retryable workflow failure carrying the failed activity's cause and its type
    (e.g. ``StateConflict``, ``CardDeclined``), so the operation's error says what happened.
    A local activity's failure arrives unwrapped, as the ApplicationError itself."""
    cause = err.cause if isinstance(err, ActivityError) else err
    kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
    return ApplicationError(
        f"{operation} failed: {cause or err}", type=kind or "ActivityFailed", non_retryable=True
    )


@dataclass(frozen=True)
class End:
    """How an operation ends with a state transition (:meth:`Operation.transition`): its
    last ``step``, ``status`` and ``result`` or ``error`` for the ``operations`` row."""

    step: str
    status: Status
    result: BaseModel | None = None
    error: str | None = None


class Operation:
    """Bookkeeping of one running operation: its step (for the progress query and the
    ``operations`` table) and the audited state transitions it makes. Built in the workflow's
    ``@workflow.init``, so queries always find it."""

    def __init__(self, tenant_id: str, kind: str, actor: str = "system") -> None:
        self.tenant_id, self.kind, self.actor = tenant_id, kind, actor
        self.current_step = "started"
        self.folds_steps = False

    def fold_steps(self) -> bool:
        """Whether this execution records a transition's step in the transition's own
        transaction (patch :data:`FOLDED_STEPS`); remembered for :meth:`transition`. Call it
        first thing in ``run``, before any other command (see
        ``workflows.plan_change.settles_steps``)."""
        self.folds_steps = workflow.patched(FOLDED_STEPS)
        return self.folds_steps

    @property
    def workflow_id(self) -> str:
        return workflow.info().workflow_id

    @property
    def idempotency_scope(self) -> str:
        return idempotency_scope()

    def progress(self) -> OperationProgress:
        """The answer of a ``progress`` query: this operation and its current step."""
        return OperationProgress(operation=str(self.kind), step=self.current_step)

    def _enter(self, step: str) -> None:
        """Make ``step`` the current step (progress query, Web UI's current details)."""
        self.current_step = step
        workflow.set_current_details(f"{self.kind}: {step}")

    @staticmethod
    def _summary(edge: str, step: str | None, end: End | None) -> str:
        """The Web UI's label of a transition that records steps: ``<step>: <edge>`` and the
        step it ends the operation with in brackets."""
        summary = f"{step}: {edge}" if step else edge
        return f"{summary} ({end.step})" if end else summary

    def _update(
        self, step: str, status: Status, result: BaseModel | None, error: str | None
    ) -> OperationUpdate:
        return OperationUpdate(
            workflow_id=self.workflow_id,
            tenant_id=self.tenant_id,
            kind=self.kind,
            status=status,
            step=step,
            result=result.model_dump(mode="json") if result is not None else None,
            error=error,
        )

    async def record(
        self,
        step: str,
        status: Status = "running",
        *,
        result: BaseModel | None = None,
        error: str | None = None,
    ) -> None:
        """Set the current step and mirror it (with ``result``/``error``) to the database
        (an idempotent upsert, run by :func:`control_plane`)."""
        self._enter(step)
        update = self._update(step, status, result, error)
        await control_plane(TenantActivities.record_operation, update, summary=f"record {step}")

    async def step(
        self,
        name: str,
        activity: Activity[Arg, Result],
        arg: Arg,
        **config: Unpack[ActivityConfig],
    ) -> Result:
        """Record step ``name``, then execute ``activity`` (see :func:`call`)."""
        await self.record(name)
        return await call(activity, arg, **config)

    async def complete(self, result: Model) -> Model:
        """Record the operation completed with ``result``; returns ``result``."""
        await self.record("completed", "completed", result=result)
        return result

    async def fail(
        self,
        err: ActivityError | ApplicationError,
        operation: str,
        before: Callable[[ApplicationError], Awaitable[object]] | None = None,
    ) -> ApplicationError:
        """Record the operation failed because of ``err`` and return the non-retryable error
        to raise (:func:`failure`); ``before`` runs first with that error (e.g. to write an
        audit row). Use: ``raise await op.fail(err, "suspension") from err``."""
        failed = failure(err, operation)
        if before is not None:
            await before(failed)
        await self.record("failed", "failed", error=str(failed))
        return failed

    async def transition(
        self,
        from_states: list[TenantState],
        to_state: TenantState,
        *,
        step: str | None = None,
        end: End | None = None,
        reason: str | None = None,
        detail: dict[str, Any] | None = None,
        changes: dict[str, Any] | None = None,
        entitlements: dict[str, int] | None = None,
        reactivation: bool = False,
        actor: str | None = None,
    ) -> TenantView:
        """Compare-and-set the tenant's state with an audit row naming this workflow and
        ``actor`` (default: the operation's) (idempotent per workflow, run by
        :func:`control_plane`).

        ``step``: the step this transition is, recorded before it; ``end``: the operation
        ends with it, recorded after it. An execution that :meth:`fold_steps` records them
        in the transition's own transaction instead (the later one stands in the row).
        """
        folded = self.folds_steps and (step is not None or end is not None)
        if step is not None:
            if folded:
                self._enter(step)
            else:
                await self.record(step)
        edge = f"{'/'.join(from_states)} -> {to_state}"
        record = None
        if folded and end is not None:
            record = self._update(end.step, end.status, end.result, end.error)
        elif folded and step is not None:
            record = self._update(step, "running", None, None)
        view = await control_plane(
            TenantActivities.transition_tenant,
            TransitionInput(
                tenant_id=self.tenant_id,
                from_states=from_states,
                to_state=to_state,
                operation=self.kind,
                workflow_id=self.workflow_id,
                actor=actor or self.actor,
                reason=reason,
                detail=detail or {},
                changes=changes or {},
                entitlements=entitlements,
                reactivation=reactivation,
                record=record,
            ),
            summary=self._summary(edge, step, end) if folded else edge,
        )
        if end is not None:
            if folded:
                self._enter(end.step)
            else:
                await self.record(end.step, end.status, result=end.result, error=end.error)
        return view
