"""Mocked activities for workflow unit tests: functions registered under the real activity
names (``@activity.defn(name=...)``), so a workflow runs its real code on the time-skipping
test server with no database, billing or application behind it.

:class:`FakeTenant` keeps one tenant in memory and records every call as a short tuple, in
order, so a test asserts the exact sequence of steps a workflow took. Inputs are taken as
the JSON the workflow sent (``dict``): the mocks do not depend on where the input classes
live, only on the activity names and the payload shapes, which must not change anyway
(running executions and ``tests/histories`` depend on them).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from lifecycle.domain.billing import BillingResult
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TenantView
from worker import workflow_runner

Call = tuple[Any, ...]


def tenant_view(tenant_id: str, plan: str, limits: dict[str, int], **fields: Any) -> TenantView:
    """An ACTIVE tenant on ``plan`` with ``limits`` as entitlements and a subscription."""
    now = datetime(2026, 1, 15, tzinfo=UTC)
    values: dict[str, Any] = {
        "tenant_id": tenant_id,
        "name": tenant_id.title(),
        "email": f"ops@{tenant_id}.io",
        "data_key": tenant_id,
        "plan": plan,
        "state": TenantState.ACTIVE,
        "version": 1,
        "billing_customer_id": f"cus_{tenant_id}",
        "billing_subscription_id": f"sub_{tenant_id}",
        "billing_period_end": None,
        "usage": {},
        "entitlements": dict(limits),
        "pending_plan_change": None,
        "legal_hold": False,
        "created_at": now,
        "updated_at": now,
        "deletion_requested_at": None,
        "purge_scheduled_at": None,
        "purged_at": None,
    }
    values.update(fields)
    return TenantView(**values)


class FakeTenant:
    """One tenant in memory behind the control-plane activities (``get_tenant``,
    ``transition_tenant``, ``record_operation``, ``set_pending_plan_change``), with ``calls``
    the ordered record of every activity call, mocked here or added by a test."""

    def __init__(self, tenant: TenantView) -> None:
        self.tenant = tenant
        self.calls: list[Call] = []
        #: every operation record: ``record_operation`` payloads and transitions' ``record``
        self.operations: list[dict[str, Any]] = []

    def activities(self) -> list[Callable[..., Any]]:
        @activity.defn(name="get_tenant")
        async def get_tenant(tenant_id: str) -> TenantView:
            self.calls.append(("get_tenant",))
            return self.tenant

        @activity.defn(name="transition_tenant")
        async def transition_tenant(change: dict[str, Any]) -> TenantView:
            edge = f"{'/'.join(change['from_states'])}->{change['to_state']}"
            record = change.get("record")
            if record:  # the operation's step, recorded in the transition's transaction
                self.calls.append(("transition_tenant", edge, record["step"], record["status"]))
            else:
                self.calls.append(("transition_tenant", edge))
            if self.tenant.state not in change["from_states"]:
                raise ApplicationError(
                    f"tenant {self.tenant.tenant_id} is {self.tenant.state.value}",
                    type="StateConflict",
                    non_retryable=True,
                )
            update = {"state": TenantState(change["to_state"]), **change.get("changes", {})}
            self.tenant = self.tenant.model_copy(update=update)
            if record:
                self.operations.append(record)
            return self.tenant

        @activity.defn(name="record_operation")
        async def record_operation(update: dict[str, Any]) -> None:
            self.calls.append(("record_operation", update["step"], update["status"]))
            self.operations.append(update)

        @activity.defn(name="set_pending_plan_change")
        async def set_pending_plan_change(data: dict[str, Any]) -> TenantView:
            change = data.get("change")
            self.calls.append(("set_pending_plan_change", change and change["to_plan"]))
            self.tenant = self.tenant.model_copy(update={"pending_plan_change": change})
            return self.tenant

        return [get_tenant, transition_tenant, record_operation, set_pending_plan_change]

    def provisioning(self) -> list[Callable[..., Any]]:
        """``provision_entitlements`` writing the limits onto the tenant."""

        @activity.defn(name="provision_entitlements")
        async def provision_entitlements(data: dict[str, Any]) -> dict[str, object]:
            self.calls.append(("provision_entitlements", data["plan"]))
            self.tenant = self.tenant.model_copy(update={"entitlements": data["limits"]})
            return {"entitlements": data["limits"], "webhook_status": None}

        return [provision_entitlements]

    def billing(
        self, *, decline: str | None = None, period_end: datetime | None = None
    ) -> list[Callable[..., Any]]:
        """``change_price`` (declining the card for price ``decline``),
        ``current_period`` (ending at ``period_end``), ``schedule_price_change`` (schedule
        ``sub_sched_1``) and ``release_schedule``."""
        current = {"price": None}

        @activity.defn(name="change_price")
        async def change_price(data: dict[str, Any]) -> BillingResult:
            price, undo = data["price_id"], bool(data.get("unless_current"))
            self.calls.append(("change_price", price, "undo" if undo else "do"))
            if price == decline:
                raise ApplicationError(
                    "Your card was declined.", type="CardDeclined", non_retryable=True
                )
            changed = not (undo and current["price"] in (None, price))
            if changed:
                current["price"] = price
            return BillingResult(
                subscription_id=data["subscription_id"], detail={"changed": changed}
            )

        @activity.defn(name="current_period")
        async def current_period(data: dict[str, Any]) -> BillingResult:
            self.calls.append(("current_period",))
            return BillingResult(subscription_id=data["subscription_id"], period_end=period_end)

        @activity.defn(name="schedule_price_change")
        async def schedule_price_change(data: dict[str, Any]) -> BillingResult:
            self.calls.append(("schedule_price_change", data["price_id"]))
            return BillingResult(
                subscription_id=data["subscription_id"], detail={"schedule_id": "sub_sched_1"}
            )

        @activity.defn(name="release_schedule")
        async def release_schedule(data: dict[str, Any]) -> BillingResult:
            self.calls.append(("release_schedule", data["schedule_id"]))
            return BillingResult(detail={"status": "released"})

        return [change_price, current_period, schedule_price_change, release_schedule]

    def usage(self, usage: dict[str, int]) -> list[Callable[..., Any]]:
        """``current_usage`` answering ``usage``."""

        @activity.defn(name="current_usage")
        async def current_usage(tenant_id: str) -> dict[str, int]:
            self.calls.append(("current_usage",))
            return dict(usage)

        return [current_usage]

    def names(self) -> list[str]:
        """The activity names called, in order."""
        return [c[0] for c in self.calls]


@asynccontextmanager
async def mocked_worker(
    client: Client, workflows: Sequence[type], activities: Sequence[Callable[..., Any]]
) -> AsyncIterator[str]:
    """A worker running the real ``workflows`` (in the production sandbox) with mocked
    ``activities`` on a fresh task queue, whose name it yields."""
    task_queue = f"unit-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=list(workflows),
        activities=list(activities),
        workflow_runner=workflow_runner(),
    ):
        yield task_queue


def field(result: Any, name: str) -> Any:
    """``name`` of a workflow result, a dict today and a pydantic model once typed."""
    return result[name] if isinstance(result, dict) else getattr(result, name)
