"""Reads and writes of the control-plane tables.

Every state change is one transaction: a compare-and-set on the tenant row's (state, version)
plus exactly one audit row, and the outbound event that row emits (``persistence.events``).
The compare-and-set is the lock between concurrent operations: a lost race raises
:class:`VersionConflict` or :class:`StateConflict`, never overwrites.

On PostgreSQL a workflow's hot steps (a transition, a step record, the provisioning step) are
each one statement after at most one read, its writes common table expressions conditional
on the compare-and-set or the row lock (atomic as any statement is), sent in autocommit: two
round trips instead of six to nine. SQLite runs the same steps as transactions under its one
write lock.
"""

from __future__ import annotations

import builtins
import functools
import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy import (
    CTE,
    ColumnElement,
    Insert,
    Select,
    Update,
    bindparam,
    case,
    delete,
    exists,
    extract,
    func,
    insert,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import CursorResult, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lifecycle.domain.dunning import READ_ONLY, DunningStatus, DunningUpdate, with_read_only
from lifecycle.domain.errors import (
    DataKeyConflict,
    StateConflict,
    TenantNotFound,
    VersionConflict,
)
from lifecycle.domain.events import EventType, event_type
from lifecycle.domain.onboarding import CreateTenantInput
from lifecycle.domain.plan_changes import PendingChangeInput, StepEventInput
from lifecycle.domain.states import TenantState, check_transition
from lifecycle.domain.tenants import (
    EventView,
    OperationUpdate,
    OperationView,
    Suspension,
    TenantView,
    TransitionInput,
    canonical_data_key,
)
from lifecycle.persistence.engine import Sessions
from lifecycle.persistence.events import (
    Executor,
    bound,
    emit_event,
    emit_for_audit,
    event_parameters,
    insert_after,
    numbered_event,
    outbound_event,
    parameters,
)
from lifecycle.persistence.tables import (
    AUDIT_EVENTS,
    ENTITLEMENTS,
    OPERATIONS,
    TENANTS,
    Entitlement,
    LifecycleEvent,
    Operation,
    Tenant,
    utcnow,
)

#: A tenant as an ORM object or as a Core row of ``tenants`` (same attribute names).
TenantRow = Tenant | Row[Any]

#: Tenant columns a transition may set besides state and version.
MUTABLE_COLUMNS = frozenset(
    {
        "plan",
        "billing_customer_id",
        "billing_subscription_id",
        "billing_period_end",
        "pending_plan_change",
        "suspended_reason",
        "deletion_requested_at",
        "deletion_requested_by",
        "plan_at_deletion",
        "purge_scheduled_at",
        "purged_at",
        "legal_hold",
        "name",
        "email",
        "suspension",
        "dunning",
        "trial_ends_at",
    }
)


class TenantRepository:
    """Control-plane storage through :class:`~lifecycle.persistence.engine.Sessions` (SQLite
    or PostgreSQL)."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    # -- tenants ---------------------------------------------------------------------------

    async def create_tenant(self, data: CreateTenantInput) -> TenantView:
        """Insert an ACTIVE tenant, its entitlements and the onboarding audit row.

        Idempotent for the same onboarding workflow (a retry after commit returns the row);
        raises :class:`StateConflict` when the tenant id is taken by anyone else, and
        :class:`DataKeyConflict` naming the holder when a live tenant holds the data key
        (the partial unique index decides between concurrent onboardings).
        """
        req, now = data.request, utcnow()
        data_key = req.data_key or req.tenant_id
        try:
            async with self.sessions.begin() as session:
                existing = await session.get(Tenant, req.tenant_id)
                if existing is not None:
                    if await self.has_event(session, req.tenant_id, data.workflow_id, "onboard"):
                        return await self.view(session, existing)
                    raise StateConflict(
                        f"tenant '{req.tenant_id}' already exists (state {existing.state})"
                    )
                holder = await self._data_key_holder(session, data_key, req.tenant_id)
                if holder is not None:
                    raise DataKeyConflict(data_key, holder)
                tenant = Tenant(
                    id=req.tenant_id,
                    name=req.name,
                    email=str(req.email),
                    data_key=data_key,
                    data_key_canonical=canonical_data_key(data_key),
                    plan=req.plan,
                    state=TenantState.ACTIVE.value,
                    version=1,
                    billing_customer_id=data.billing.customer_id,
                    billing_subscription_id=data.billing.subscription_id,
                    billing_period_end=data.billing.period_end,
                    usage={},
                    created_at=now,
                    updated_at=now,
                    legal_hold=False,
                    trial_ends_at=data.trial_ends_at,
                )
                session.add(tenant)
                await session.flush()
                self._write_entitlements(session, req.tenant_id, data.limits, now)
                audit = LifecycleEvent(
                    at=now,
                    tenant_id=req.tenant_id,
                    operation="onboard",
                    from_state=None,
                    to_state=TenantState.ACTIVE.value,
                    workflow_id=data.workflow_id,
                    actor=data.actor,
                    detail={"plan": req.plan, "billing": data.billing.model_dump(mode="json")},
                )
                session.add(audit)
                await emit_for_audit(session, audit, plan=req.plan)
                await session.flush()
                return await self.view(session, tenant)
        except IntegrityError as exc:  # a concurrent onboarding took the id or the data key
            holder = await self.data_key_holder(data_key, req.tenant_id)
            if holder is not None:
                raise DataKeyConflict(data_key, holder) from exc
            raise StateConflict(f"tenant '{req.tenant_id}' already exists") from exc

    async def data_key_holder(self, data_key: str, tenant_id: str | None = None) -> str | None:
        """The id of a live (not purged) tenant other than ``tenant_id`` whose data key
        equals ``data_key`` in canonical form (:func:`canonical_data_key`), or None.

        A purged tenant no longer holds its key: its data is gone and its certificate sealed,
        so the key may be given to a new tenant.
        """
        async with self.sessions() as session:
            return await self._data_key_holder(session, data_key, tenant_id)

    @staticmethod
    async def _data_key_holder(
        session: AsyncSession, data_key: str, tenant_id: str | None
    ) -> str | None:
        key = canonical_data_key(data_key)
        query = select(Tenant.id, Tenant.data_key).where(
            Tenant.purged_at.is_(None),
            (Tenant.data_key_canonical == key) | Tenant.data_key_canonical.is_(None),
        )
        if tenant_id is not None:
            query = query.where(Tenant.id != tenant_id)
        for holder, held in (await session.execute(query.order_by(Tenant.created_at))).all():
            if canonical_data_key(held) == key:
                return str(holder)
        return None

    async def get(self, tenant_id: str) -> TenantView:
        """Return the tenant; raise :class:`TenantNotFound`.

        One Core statement (the row joined with its entitlements): every workflow step that
        reads the tenant comes here."""
        async with self.sessions.reading() as conn:
            tenant, limits = await self._tenant_row(conn, tenant_id)
        return self._to_view(tenant, limits)

    async def exists(self, tenant_id: str) -> bool:
        async with self.sessions() as session:
            return await session.get(Tenant, tenant_id) is not None

    async def list(
        self,
        *,
        state: str | None = None,
        plan: str | None = None,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[builtins.list[TenantView], int]:
        """Return one page of tenants ordered by id, and the total matching the filters;
        ``search`` matches a part of the id or of the name, case-insensitively."""
        query = select(Tenant)
        if search:
            needle = search.lower()
            query = query.where(
                func.lower(Tenant.id).contains(needle, autoescape=True)
                | func.lower(func.coalesce(Tenant.name, "")).contains(needle, autoescape=True)
            )
        if state:
            query = query.where(Tenant.state == state)
        if plan:
            query = query.where(Tenant.plan == plan)
        async with self.sessions() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
            rows = (
                await session.scalars(query.order_by(Tenant.id).limit(limit).offset(offset))
            ).all()
            limits = await self._entitlements(session, [t.id for t in rows])
            return [self._to_view(t, limits.get(t.id, {})) for t in rows], int(total or 0)

    async def count_by_state(self) -> dict[str, int]:
        """Number of tenants per state (states without tenants are absent)."""
        async with self.sessions() as session:
            rows = await session.execute(select(Tenant.state, func.count()).group_by(Tenant.state))
            return {state: int(n) for state, n in rows.all()}

    async def transition(self, change: TransitionInput, run_id: str = "") -> TenantView:
        """Apply a state change as compare-and-set on (state, version) plus one audit row,
        and ``change.record`` (the operation's step, if given) into the ``operations`` row of
        run ``run_id`` (:meth:`record_operation`), all in one transaction.

        Idempotent per workflow: when the tenant is already in ``to_state`` by an audit row of
        this workflow and operation (an activity retried after its commit), returns the tenant
        unchanged. Raises :class:`TenantNotFound`, :class:`StateConflict` (current state not in
        ``from_states``, naming it), :class:`InvalidTransition`, or :class:`VersionConflict`
        when another writer changed the row between read and write.

        Core statements on one connection (no ORM unit of work): a workflow's hot path.
        """
        unknown = set(change.changes) - MUTABLE_COLUMNS
        if unknown:
            raise ValueError(f"columns not settable by a transition: {sorted(unknown)}")
        now = utcnow()
        if self.sessions.autocommits and change.entitlements is None:
            return await self._transition_in_one_statement(change, run_id, now)
        async with self.sessions.writing() as conn:
            tenant, limits = await self._tenant_row(conn, change.tenant_id)
            if await self._transitioned(conn, change, tenant):
                return self._to_view(tenant, limits)
            cas = _compare_and_set(_changed(change))
            updated = (await conn.execute(cas, _cas_parameters(change, tenant, now))).first()
            if updated is None:
                raise self._version_conflict(tenant)
            if change.entitlements is not None:
                limits = dict(change.entitlements)
                if change.to_state is TenantState.ACTIVE:  # a plan's limits, not a revocation
                    dunning = change.changes.get("dunning", tenant.dunning)
                    limits = with_read_only(limits, _dunning(dunning))
                await self._replace_entitlements(conn, tenant.id, limits, now)
            await self._audit(conn, **self._transition_audit(change, tenant, limits, now))
            if change.record is not None:
                await self._record_operation(conn, change.record, run_id, now)
            return self._to_view(updated, limits)

    async def _transition_in_one_statement(
        self, change: TransitionInput, run_id: str, now: datetime
    ) -> TenantView:
        """:meth:`transition` (without entitlements) on PostgreSQL in two round trips: the
        tenant read, then one statement whose common table expressions make the
        compare-and-set, the audit row, its outbound event and the operation's record, each
        conditional on the compare-and-set's row, atomic as any one statement is. A record the
        statement could not make (the run's row has ended, or a row recorded before run ids
        were kept is to be adopted) is made after it by :meth:`record_operation`."""
        async with self.sessions.reading() as conn:
            tenant, limits = await self._tenant_row(conn, change.tenant_id)
            if await self._transitioned(conn, change, tenant):
                return self._to_view(tenant, limits)
        audit = self._transition_audit(change, tenant, limits, now)
        event = outbound_event(**_event_columns(audit))
        record = change.record
        statement = _transition_statement(
            _changed(change),
            event is not None,
            None if record is None else _record_shape(record),
        )
        values = _cas_parameters(change, tenant, now) | bound(_audit_row(audit), "audit_")
        if event is not None:
            values |= event_parameters(tenant.id, *event, now)
        if record is not None:
            values |= _record_parameters(record, run_id, now)
        async with self.sessions.statement() as conn:
            updated = (await conn.execute(statement, values)).first()
        if updated is None:
            raise self._version_conflict(tenant)
        if change.record is not None and not updated.recorded:
            await self.record_operation(change.record, run_id)
        return self._to_view(updated, limits)

    async def _transitioned(self, db: Executor, change: TransitionInput, tenant: TenantRow) -> bool:
        """Whether ``change`` was already made by its workflow (a retried activity whose first
        attempt committed): the tenant is in its target state by an audit row of this
        workflow and operation. Otherwise checks it may be made now: raises
        :class:`StateConflict` (naming the state) or :class:`InvalidTransition`."""
        if tenant.state == change.to_state.value and await self.has_event(
            db, tenant.id, change.workflow_id, change.operation, change.to_state.value
        ):
            return True
        if tenant.state not in {s.value for s in change.from_states}:
            allowed = ", ".join(s.value for s in change.from_states)
            raise StateConflict(
                f"tenant '{tenant.id}' is {tenant.state}; {change.operation} needs state {allowed}"
            )
        check_transition(tenant.state, change.to_state, reactivation=change.reactivation)
        return False

    @staticmethod
    def _version_conflict(tenant: TenantRow) -> VersionConflict:
        return VersionConflict(
            f"tenant '{tenant.id}' was changed concurrently (expected {tenant.state} "
            f"v{tenant.version}); retry the operation"
        )

    @staticmethod
    def _transition_audit(
        change: TransitionInput, tenant: TenantRow, limits: dict[str, int], now: datetime
    ) -> dict[str, Any]:
        """The arguments of :meth:`_audit` for ``change`` of ``tenant`` (as read), with
        ``limits`` the entitlements in force after it."""
        detail = dict(change.detail)
        if change.reason:
            detail["reason"] = change.reason
        plan = change.changes.get("plan", tenant.plan)
        return {
            "tenant_id": tenant.id,
            "data_key": tenant.data_key,
            "plan": plan,
            "entitlements": limits,
            "operation": change.operation,
            "from_state": tenant.state,
            "to_state": change.to_state.value,
            "workflow_id": change.workflow_id,
            "actor": change.actor,
            "detail": detail,
            "at": now,
            "plan_changed": plan != tenant.plan,
            "previous_plan": tenant.plan,
        }

    # -- audit log -------------------------------------------------------------------------

    async def record_event(
        self,
        tenant_id: str,
        operation: str,
        *,
        workflow_id: str | None,
        actor: str = "system",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append an audit row that is not a state change (e.g. a compensation step)."""
        async with self.sessions.writing() as conn:
            await self._add_event_once(
                conn, tenant_id, operation, workflow_id, actor, detail or {}, None
            )

    async def _add_event_once(
        self,
        db: Executor,
        tenant_id: str,
        operation: str,
        workflow_id: str | None,
        actor: str,
        detail: dict[str, Any],
        key: str | None,
        event: EventType | None = None,
        *,
        tenant: TenantRow | None = None,
        entitlements: dict[str, int] | None = None,
    ) -> None:
        """Add an audit row and the outbound event it emits (``event``, else the one its
        operation maps to); with ``key`` (kept in ``detail["key"]``) only if no row of this
        tenant, workflow and operation carries that key yet (a retried activity adds nothing).
        ``tenant`` (its row) and ``entitlements`` (in force once the transaction commits) feed
        the event's data; what is not given is read in the transaction."""
        if key is not None:
            rows = await db.execute(
                select(AUDIT_EVENTS.c.detail).where(
                    AUDIT_EVENTS.c.tenant_id == tenant_id,
                    AUDIT_EVENTS.c.workflow_id == workflow_id,
                    AUDIT_EVENTS.c.operation == operation,
                )
            )
            if any((d or {}).get("key") == key for (d,) in rows):
                return
            detail = {**detail, "key": key}
        data_key = plan = None
        if event is not None or event_type(operation, None, None) is not None:
            if tenant is None:
                tenant = (
                    await db.execute(select(TENANTS).where(TENANTS.c.id == tenant_id))
                ).first()
            if tenant is not None:
                data_key, plan = tenant.data_key, tenant.plan
            if entitlements is None:
                entitlements = await self._entitlements_of(db, tenant_id)
        audit = _step_audit(
            tenant_id,
            operation,
            workflow_id,
            actor,
            detail,
            data_key=data_key,
            plan=plan,
            entitlements=entitlements or {},
            at=utcnow(),
        )
        await self._audit(db, event=event, **audit)

    @staticmethod
    async def _audit(db: Executor, *, event: EventType | None = None, **audit: Any) -> None:
        """Insert one audit row and the outbound event it emits (``event``, else
        :func:`event_type`; :func:`emit_event`). ``audit``: the row's ``tenant_id``,
        ``operation``, ``from_state``, ``to_state``, ``workflow_id``, ``actor``, ``detail``
        and ``at``, and the event's ``data_key``, ``plan``, ``entitlements``,
        ``plan_changed`` and further data (:func:`outbound_event`)."""
        await db.execute(insert(AUDIT_EVENTS).values(**_audit_row(audit)))
        await emit_event(db, type_=event, **audit)

    async def events(
        self, tenant_id: str, *, limit: int = 100, offset: int = 0
    ) -> builtins.list[EventView]:
        """Audit rows of a tenant, oldest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(LifecycleEvent)
                .where(LifecycleEvent.tenant_id == tenant_id)
                .order_by(LifecycleEvent.id)
                .limit(limit)
                .offset(offset)
            )
            return [EventView.model_validate(r, from_attributes=True) for r in rows]

    # -- operations ------------------------------------------------------------------------

    async def record_operation(self, update_: OperationUpdate, run_id: str = "") -> None:
        """Insert or update the operation row of one workflow run (upsert by workflow id and
        ``run_id``, Temporal's run id). A run never overwrites another run's row, so every
        count derived from the table only grows. A ``running`` row recorded before run ids
        were kept (``run_id == ''``) is adopted by the run's first record. A ``running``
        record arriving after the run's row has ended is ignored (the end stands)."""
        running = update_.status == "running"
        if running and self.sessions.autocommits:
            # the usual record, a step of a running run: one UPDATE that commits by itself
            async with self.sessions.statement() as conn:
                if await self._record_step(conn, update_, run_id):
                    return
        async with self.sessions.writing() as conn:
            await self._record_operation(
                conn, update_, run_id, utcnow(), stepped=running and self.sessions.autocommits
            )

    @staticmethod
    def _operation_values(update_: OperationUpdate) -> dict[str, Any]:
        """The ``operations`` columns ``update_`` sets (status, and step, result and error
        when given)."""
        values: dict[str, Any] = {"status": update_.status}
        if update_.step is not None:
            values["step"] = update_.step
        if update_.result is not None:
            values["result"] = update_.result
        if update_.error is not None:
            values["error"] = update_.error
        return values

    @classmethod
    async def _record_step(
        cls, conn: AsyncConnection, update_: OperationUpdate, run_id: str
    ) -> bool:
        """Record a step of a running run in its row: one UPDATE; False when the run has no
        ``running`` row (its first record, a legacy row to adopt, or it has ended)."""
        values = cls._operation_values(update_)
        done = await conn.execute(
            _step_statement(tuple(values)),
            bound(values | {"workflow_id": update_.workflow_id, "run_id": run_id}, "op_"),
        )
        return done.rowcount == 1

    @classmethod
    async def _record_operation(
        cls,
        conn: AsyncConnection,
        update_: OperationUpdate,
        run_id: str,
        now: datetime,
        *,
        stepped: bool = False,
    ) -> None:
        """:meth:`record_operation` in ``conn``'s transaction, at ``now``; ``stepped``: the
        one-UPDATE record of a step (:meth:`_record_step`) was already tried and found no
        running row."""
        ops = OPERATIONS
        of_run = (ops.c.workflow_id == update_.workflow_id) & (ops.c.run_id == run_id)
        values = cls._operation_values(update_)
        ended = update_.status != "running"
        if not ended and not stepped and await cls._record_step(conn, update_, run_id):
            return
        rows = {
            r.run_id: r
            for r in await conn.execute(
                select(ops.c.run_id, ops.c.status, ops.c.started_at, ops.c.finished_at).where(
                    ops.c.workflow_id == update_.workflow_id, ops.c.run_id.in_([run_id, ""])
                )
            )
        }
        row = rows.get(run_id)
        legacy = rows.get("")
        if row is None and run_id and legacy is not None and legacy.status == "running":
            # adopt the row recorded before run ids were kept: it becomes this run's
            await conn.execute(
                update(ops)
                .where(ops.c.workflow_id == update_.workflow_id, ops.c.run_id == "")
                .values(run_id=run_id)
            )
            row = legacy
        if row is None:
            if ended:
                values |= {"finished_at": now, "duration_seconds": 0.0}
            await conn.execute(
                insert(ops).values(
                    workflow_id=update_.workflow_id,
                    run_id=run_id,
                    tenant_id=update_.tenant_id,
                    kind=update_.kind,
                    started_at=now,
                    **values,
                )
            )
            return
        if row.status != "running" and not ended:
            # a step's record that lost a race with the end (a local activity attempt
            # that timed out and committed after its retry): the run has ended
            return
        if ended and row.finished_at is None:
            values |= {
                "finished_at": now,
                "duration_seconds": (now - row.started_at).total_seconds(),
            }
        await conn.execute(update(ops).where(of_run).values(**values))

    async def operation_stats(
        self, buckets: Sequence[float]
    ) -> tuple[dict[tuple[str, str], int], dict[str, tuple[builtins.list[int], float, int]]]:
        """Operation counts by (kind, status), and per kind of finished operations the
        cumulative counts at each duration bucket bound (seconds), the sum and the count."""
        async with self.sessions() as session:
            counts = await session.execute(
                select(Operation.kind, Operation.status, func.count()).group_by(
                    Operation.kind, Operation.status
                )
            )
            by_status = {(k, s): int(n) for k, s, n in counts.all()}
            columns = [
                func.sum(case((Operation.duration_seconds <= b, 1), else_=0)) for b in buckets
            ]
            rows = await session.execute(
                select(
                    Operation.kind,
                    func.coalesce(func.sum(Operation.duration_seconds), 0.0),
                    func.count(),
                    *columns,
                )
                .where(Operation.duration_seconds.is_not(None))
                .group_by(Operation.kind)
            )
            durations = {
                kind: ([int(c or 0) for c in cums], float(total), int(n))
                for kind, total, n, *cums in rows.all()
            }
            return by_status, durations

    async def purges_due(self, before: datetime) -> builtins.list[TenantView]:
        """Soft-deleted tenants whose purge is scheduled before ``before`` (UTC)."""
        async with self.sessions() as session:
            rows = (
                await session.scalars(
                    select(Tenant)
                    .where(
                        Tenant.state == TenantState.DELETED.value,
                        Tenant.purged_at.is_(None),
                        Tenant.purge_scheduled_at <= before,
                    )
                    .order_by(Tenant.purge_scheduled_at)
                )
            ).all()
            return [self._to_view(t, {}) for t in rows]

    async def operations_by_day(self, since: datetime) -> dict[date, dict[str, int]]:
        """Operation runs started at or after ``since`` (UTC), counted per UTC start day and
        status (``running``, ``completed``, ``failed``, ``cancelled``)."""
        counts: dict[date, dict[str, int]] = {}
        async with self.sessions() as session:
            rows = await session.execute(
                select(Operation.started_at, Operation.status).where(Operation.started_at >= since)
            )
            for started, status in rows.all():
                day = counts.setdefault(started.date(), {})
                day[status] = day.get(status, 0) + 1
        return counts

    async def failed_operations(self, limit: int = 20) -> builtins.list[OperationView]:
        """The ``limit`` most recently started failed operation runs, with their error."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Operation)
                .where(Operation.status == "failed")
                .order_by(*_LATEST_FIRST)
                .limit(limit)
            )
            return [_operation_view(op) for op in rows]

    async def operation(self, workflow_id: str, run_id: str | None = None) -> OperationView | None:
        """The recorded run ``run_id`` of ``workflow_id``, or its latest run when ``run_id`` is
        None; None when nothing is recorded."""
        async with self.sessions() as session:
            query = select(Operation).where(Operation.workflow_id == workflow_id)
            if run_id is not None:
                query = query.where(Operation.run_id == run_id)
            op = await session.scalar(query.order_by(*_LATEST_FIRST).limit(1))
            return None if op is None else _operation_view(op)

    async def operation_runs(self, workflow_id: str) -> builtins.list[OperationView]:
        """Every recorded run of ``workflow_id``, latest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(Operation)
                .where(Operation.workflow_id == workflow_id)
                .order_by(*_LATEST_FIRST)
            )
            return [_operation_view(op) for op in rows]

    async def tenant_operations(
        self, tenant_id: str, *, limit: int = 100, offset: int = 0
    ) -> tuple[builtins.list[OperationView], int]:
        """One page of the tenant's operation runs, latest first, and their total number."""
        async with self.sessions() as session:
            total = await session.scalar(
                select(func.count()).select_from(Operation).where(Operation.tenant_id == tenant_id)
            )
            rows = await session.scalars(
                select(Operation)
                .where(Operation.tenant_id == tenant_id)
                .order_by(*_LATEST_FIRST)
                .limit(limit)
                .offset(offset)
            )
            return [_operation_view(op) for op in rows], int(total or 0)

    async def latest_operation(self, kind: str, status: str) -> OperationView | None:
        """The most recently finished (or started) operation of ``kind`` in ``status``."""
        query = (
            select(Operation)
            .where(Operation.kind == kind, Operation.status == status)
            .order_by(Operation.finished_at.desc(), Operation.started_at.desc())
            .limit(1)
        )
        async with self.sessions() as session:
            op = await session.scalar(query)
            return None if op is None else OperationView.model_validate(op, from_attributes=True)

    async def attach_subscription(
        self,
        tenant_id: str,
        customer_id: str | None,
        subscription_id: str,
        *,
        workflow_id: str,
        actor: str,
    ) -> TenantView:
        """Store a subscription created outside a state change (a reconciliation repair) on
        the tenant with an audit row ``billing-subscription-attached`` (once per workflow)."""
        async with self.sessions.begin() as session:
            tenant = await self._locked(session, tenant_id)
            previous = tenant.billing_subscription_id
            tenant.billing_subscription_id = subscription_id
            if customer_id:
                tenant.billing_customer_id = customer_id
            await self._add_event_once(
                session,
                tenant_id,
                "billing-subscription-attached",
                workflow_id,
                actor,
                {"subscription_id": subscription_id, "previous": previous},
                subscription_id,
                tenant=tenant,
            )
            await session.flush()
            return await self.view(session, tenant)

    # -- plan changes and usage --------------------------------------------------------------

    async def replace_entitlements(
        self, tenant_id: str, limits: dict[str, int], event: StepEventInput
    ) -> TenantView:
        """Replace the tenant's entitlements with ``limits`` (no state change; ``read_only``
        kept while dunning says so, :func:`~lifecycle.domain.dunning.with_read_only`) and
        append the audit row ``event`` with its ``tenant.entitlements_changed`` outbound
        event (once per ``event.key``), in one transaction (Core statements: every plan
        change's provisioning step; on PostgreSQL one statement after the tenant read,
        :meth:`_provision_in_one_statement`)."""
        if self.sessions.autocommits:
            provisioned = await self._provision_in_one_statement(tenant_id, limits, event)
            if provisioned is not None:
                return provisioned
        async with self.sessions.writing() as conn:
            tenant, _ = await self._tenant_row(conn, tenant_id, lock=True)
            limits = with_read_only(limits, _dunning(tenant.dunning))
            await self._replace_entitlements(conn, tenant_id, limits, utcnow())
            await self._add_event_once(
                conn,
                tenant_id,
                event.operation,
                event.workflow_id,
                event.actor,
                {**event.detail, "entitlements": limits},
                event.key,
                EventType.ENTITLEMENTS_CHANGED,
                tenant=tenant,
                entitlements=limits,
            )
            return self._to_view(tenant, dict(limits))

    async def _provision_in_one_statement(
        self, tenant_id: str, limits: dict[str, int], event: StepEventInput
    ) -> TenantView | None:
        """:meth:`replace_entitlements` on PostgreSQL in two round trips: the tenant read (for
        its dunning status, data key and plan), then one statement whose common table
        expressions lock the tenant's row, upsert ``limits``, delete the other entitlements,
        and add the audit row and its event unless one of this workflow already carries
        ``event.key``. The statement applies only while the tenant's dunning status is still
        the one read (it decides ``read_only``); returns None when it changed meanwhile, for
        the caller to replace in a transaction instead."""
        async with self.sessions.reading() as conn:
            tenant, _ = await self._tenant_row(conn, tenant_id)
        limits = with_read_only(limits, _dunning(tenant.dunning))
        now = utcnow()
        audit = _step_audit(
            tenant_id,
            event.operation,
            event.workflow_id,
            event.actor,
            {**event.detail, "entitlements": limits, "key": event.key},
            data_key=tenant.data_key,
            plan=tenant.plan,
            entitlements=limits,
            at=now,
        )
        changed = outbound_event(type_=EventType.ENTITLEMENTS_CHANGED, **_event_columns(audit))
        assert changed is not None
        values = {
            "tenant_id": tenant_id,
            "dunning": json.dumps(tenant.dunning),
            "resources": list(limits),
            "limits": list(limits.values()),
            "now": now,
            "key": event.key,
            **bound(_audit_row(audit), "audit_"),
            **event_parameters(tenant_id, *changed, now),
        }
        async with self.sessions.statement() as conn:
            if not (await conn.execute(_provision_statement(), values)).scalar_one():
                return None
        return self._to_view(tenant, dict(limits))

    async def set_dunning(self, data: DunningUpdate) -> TenantView:
        """Set or clear the tenant's dunning status (no state change) and append the audit
        row ``data.operation`` (once per ``data.key``), in one transaction. The payment that
        ends dunning (``data.lifts_read_only``) also removes ``read_only`` from the
        entitlements; when there was one, the row emits ``tenant.entitlements_changed``."""
        async with self.sessions.begin() as session:
            tenant = await self._locked(session, data.tenant_id)
            tenant.dunning = data.status.model_dump(mode="json") if data.status else None
            lifted = False
            if data.lifts_read_only:
                removed = await session.execute(
                    delete(Entitlement).where(
                        Entitlement.tenant_id == data.tenant_id,
                        Entitlement.resource == READ_ONLY,
                        Entitlement.limit > 0,  # a suspension's zeroed flag stays as it is
                    )
                )
                lifted = cast(CursorResult[Any], removed).rowcount > 0
            await self._add_event_once(
                session,
                data.tenant_id,
                data.operation,
                data.workflow_id,
                "billing",
                dict(data.detail),
                data.key,
                EventType.ENTITLEMENTS_CHANGED if lifted else None,
                tenant=tenant,
            )
            await session.flush()
            return await self.view(session, tenant)

    async def set_pending_plan_change(self, data: PendingChangeInput) -> TenantView:
        """Set or clear ``pending_plan_change`` without a state change, audited.

        Setting bumps ``version`` and needs the tenant ACTIVE on ``change["from_plan"]``
        (else :class:`StateConflict` naming state and plan); clearing only clears the pending
        change of ``data.workflow_id`` and always audits (``cleared`` says if it did).
        """
        async with self.sessions.begin() as session:
            tenant = await self._locked(session, data.tenant_id)
            detail: dict[str, Any] = {"reason": data.reason} if data.reason else {}
            if data.change is not None:
                if tenant.state != TenantState.ACTIVE.value:
                    raise StateConflict(
                        f"tenant '{tenant.id}' is {tenant.state}; a pending plan change needs "
                        "ACTIVE"
                    )
                if tenant.plan != data.change.get("from_plan"):
                    raise StateConflict(
                        f"tenant '{tenant.id}' is on plan '{tenant.plan}', not "
                        f"'{data.change.get('from_plan')}'"
                    )
                if tenant.pending_plan_change != data.change:
                    tenant.pending_plan_change = data.change
                    tenant.version += 1
                    tenant.updated_at = utcnow()
                detail |= {"step": "pending-plan-change", "pending_plan_change": data.change}
            else:
                pending = tenant.pending_plan_change or {}
                cleared = pending.get("workflow_id") == data.workflow_id
                if cleared:
                    tenant.pending_plan_change = None
                    tenant.version += 1
                    tenant.updated_at = utcnow()
                detail |= {"step": "pending-plan-change-cleared", "cleared": cleared}
            await self._add_event_once(
                session,
                tenant.id,
                data.operation,
                data.workflow_id,
                data.actor,
                detail,
                data.key,
                tenant=tenant,
            )
            await session.flush()
            return await self.view(session, tenant)

    async def tenant_by_subscription(self, subscription_id: str) -> TenantView | None:
        """The tenant billed by ``subscription_id``, or None."""
        async with self.sessions() as session:
            tenant = await session.scalar(
                select(Tenant).where(Tenant.billing_subscription_id == subscription_id).limit(1)
            )
            return None if tenant is None else await self.view(session, tenant)

    async def record_usage(self, tenant_id: str, usage: dict[str, int]) -> TenantView:
        """Merge ``usage`` (resource -> amount) into the tenant's recorded usage; resources not
        named keep their value. Metering, not a lifecycle change: no version bump, no audit."""
        async with self.sessions.begin() as session:
            tenant = await self._locked(session, tenant_id)
            tenant.usage = {**(tenant.usage or {}), **usage}
            await session.flush()
            return await self.view(session, tenant)

    @staticmethod
    async def _locked(session: AsyncSession, tenant_id: str) -> Tenant:
        """The tenant row, locked for this transaction (FOR UPDATE; SQLite locks on BEGIN)."""
        tenant = await session.get(Tenant, tenant_id, with_for_update=True)
        if tenant is None:
            raise TenantNotFound(tenant_id)
        return tenant

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _write_entitlements(
        session: AsyncSession, tenant_id: str, limits: dict[str, int], now: datetime
    ) -> None:
        for resource, limit in limits.items():
            session.add(
                Entitlement(tenant_id=tenant_id, resource=resource, limit=limit, updated_at=now)
            )

    @staticmethod
    async def has_event(
        db: Executor,
        tenant_id: str,
        workflow_id: str,
        operation: str,
        to_state: str | None = None,
    ) -> bool:
        query = select(AUDIT_EVENTS.c.id).where(
            AUDIT_EVENTS.c.tenant_id == tenant_id,
            AUDIT_EVENTS.c.workflow_id == workflow_id,
            AUDIT_EVENTS.c.operation == operation,
        )
        if to_state is not None:
            query = query.where(AUDIT_EVENTS.c.to_state == to_state)
        return (await db.scalar(query.limit(1))) is not None

    @staticmethod
    async def _entitlements_of(db: Executor, tenant_id: str) -> dict[str, int]:
        rows = await db.execute(
            select(ENTITLEMENTS.c.resource, ENTITLEMENTS.c.limit).where(
                ENTITLEMENTS.c.tenant_id == tenant_id
            )
        )
        return {resource: int(limit) for resource, limit in rows}

    @staticmethod
    async def _tenant_row(
        conn: AsyncConnection, tenant_id: str, *, lock: bool = False
    ) -> tuple[Row[Any], dict[str, int]]:
        """The tenant's row and its entitlements, in one statement; ``lock``: FOR UPDATE
        (SQLite locks on BEGIN). Raises :class:`TenantNotFound`."""
        query = _LOCKED_TENANT_ROW if lock else _TENANT_ROW
        rows = (await conn.execute(query, {"tenant_id": tenant_id})).all()
        if not rows:
            raise TenantNotFound(tenant_id)
        return rows[0], {r.resource: int(r.limit) for r in rows if r.resource is not None}

    @staticmethod
    async def _replace_entitlements(
        conn: AsyncConnection, tenant_id: str, limits: dict[str, int], now: datetime
    ) -> None:
        await conn.execute(delete(ENTITLEMENTS).where(ENTITLEMENTS.c.tenant_id == tenant_id))
        if limits:
            await conn.execute(
                insert(ENTITLEMENTS),
                [
                    {"tenant_id": tenant_id, "resource": r, "limit": n, "updated_at": now}
                    for r, n in limits.items()
                ],
            )

    @staticmethod
    async def _entitlements(
        session: AsyncSession, tenant_ids: Sequence[str]
    ) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        if not tenant_ids:
            return out
        rows = await session.scalars(
            select(Entitlement).where(Entitlement.tenant_id.in_(list(tenant_ids)))
        )
        for row in rows:
            out.setdefault(row.tenant_id, {})[row.resource] = int(row.limit)
        return out

    async def view(self, session: AsyncSession, tenant: Tenant) -> TenantView:
        """The API view of ``tenant`` (a row of ``session``) with its entitlements."""
        limits = await self._entitlements(session, [tenant.id])
        return self._to_view(tenant, limits.get(tenant.id, {}))

    @staticmethod
    def _to_view(tenant: TenantRow, entitlements: dict[str, int]) -> TenantView:
        return TenantView(
            tenant_id=tenant.id,
            name=tenant.name,
            email=tenant.email,
            data_key=tenant.data_key,
            plan=tenant.plan,
            state=TenantState(tenant.state),
            version=tenant.version,
            billing_customer_id=tenant.billing_customer_id,
            billing_subscription_id=tenant.billing_subscription_id,
            billing_period_end=tenant.billing_period_end,
            usage=dict(tenant.usage or {}),
            entitlements=entitlements,
            pending_plan_change=tenant.pending_plan_change,
            legal_hold=bool(tenant.legal_hold),
            created_at=tenant.created_at,
            updated_at=tenant.updated_at,
            deletion_requested_at=tenant.deletion_requested_at,
            purge_scheduled_at=tenant.purge_scheduled_at,
            purged_at=tenant.purged_at,
            suspension=_suspension(tenant),
            dunning=DunningStatus.model_validate(tenant.dunning) if tenant.dunning else None,
            trial_ends_at=tenant.trial_ends_at,
        )


def _suspension(tenant: TenantRow) -> Suspension | None:
    """The :class:`Suspension` of a SUSPENDED tenant (None otherwise)."""
    if tenant.state != TenantState.SUSPENDED.value:
        return None
    return Suspension(**(tenant.suspension or {}), reason=tenant.suspended_reason)


#: Order of an operation's runs: the newest start first (run id breaks ties stably).
_LATEST_FIRST = (Operation.started_at.desc(), Operation.run_id.desc())


def _operation_view(op: Operation) -> OperationView:
    return OperationView.model_validate(op, from_attributes=True)


def _dunning(column: dict[str, Any] | None) -> DunningStatus | None:
    """The ``dunning`` column as a :class:`DunningStatus` (None: not in dunning)."""
    return DunningStatus.model_validate(column) if column else None


#: The ``lifecycle_events`` columns of an audit row among :meth:`TenantRepository._audit`'s
#: arguments (the others describe its outbound event).
_AUDIT_COLUMNS = (
    "at",
    "tenant_id",
    "operation",
    "from_state",
    "to_state",
    "workflow_id",
    "actor",
    "detail",
)


def _audit_row(audit: dict[str, Any]) -> dict[str, Any]:
    """The ``lifecycle_events`` row of :meth:`TenantRepository._audit`'s arguments."""
    return {name: audit[name] for name in _AUDIT_COLUMNS}


def _step_audit(
    tenant_id: str,
    operation: str,
    workflow_id: str | None,
    actor: str,
    detail: dict[str, Any],
    *,
    data_key: str | None,
    plan: str | None,
    entitlements: dict[str, int],
    at: datetime,
) -> dict[str, Any]:
    """:meth:`TenantRepository._audit`'s arguments for an audit row that is not a state change
    (no states), whose event carries ``data_key``, ``plan`` and ``entitlements``."""
    return {
        "tenant_id": tenant_id,
        "data_key": data_key,
        "plan": plan,
        "entitlements": entitlements,
        "operation": operation,
        "from_state": None,
        "to_state": None,
        "workflow_id": workflow_id,
        "actor": actor,
        "detail": detail,
        "at": at,
    }


def _event_columns(audit: dict[str, Any]) -> dict[str, Any]:
    """:func:`outbound_event`'s arguments among :meth:`TenantRepository._audit`'s."""
    return {name: value for name, value in audit.items() if name not in ("tenant_id", "at")}


# -- statements built once ------------------------------------------------------------------
# The hot path's statements are built once per shape with bind parameters: SQLAlchemy then
# memoises their cache keys, and a call only binds its values (building a statement of
# common table expressions and its cache key cost as much as running it).

#: The tenant's row joined with its entitlements (parameter ``tenant_id``).
_TENANT_ROW = (
    select(TENANTS, ENTITLEMENTS.c.resource, ENTITLEMENTS.c.limit)
    .outerjoin(ENTITLEMENTS, ENTITLEMENTS.c.tenant_id == TENANTS.c.id)
    .where(TENANTS.c.id == bindparam("tenant_id"))
)
#: :data:`_TENANT_ROW` with the tenant's row locked (FOR UPDATE; SQLite locks on BEGIN).
_LOCKED_TENANT_ROW = _TENANT_ROW.with_for_update(of=TENANTS)

#: The shape of an operation record (:func:`_record_after`): whether it ends the run, and
#: the ``operations`` columns it sets besides the run's identity.
RecordShape = tuple[bool, tuple[str, ...]]


def _changed(change: TransitionInput) -> tuple[str, ...]:
    """The tenant columns ``change`` sets besides state, version and ``updated_at``."""
    return tuple(sorted(change.changes))


@functools.lru_cache(maxsize=256)
def _compare_and_set(columns: tuple[str, ...]) -> Update:
    """The UPDATE of a transition that also sets ``columns``, on the tenant's row as read
    (state and version), returning the new row (none when another writer changed it
    meanwhile); parameters :func:`_cas_parameters`."""
    return (
        update(TENANTS)
        .where(
            TENANTS.c.id == bindparam("tenant_id"),
            TENANTS.c.state == bindparam("from_state"),
            TENANTS.c.version == bindparam("version"),
        )
        .values(
            state=bindparam("to_state", type_=TENANTS.c.state.type),
            version=bindparam("new_version", type_=TENANTS.c.version.type),
            updated_at=bindparam("now", type_=TENANTS.c.updated_at.type),
            **parameters(TENANTS, columns, "set_"),
        )
        .returning(*TENANTS.c)
    )


def _cas_parameters(change: TransitionInput, tenant: TenantRow, now: datetime) -> dict[str, Any]:
    """The parameters of :func:`_compare_and_set` for ``change`` of ``tenant`` (as read) at
    ``now``."""
    return {
        "tenant_id": tenant.id,
        "from_state": tenant.state,
        "version": tenant.version,
        "to_state": change.to_state.value,
        "new_version": tenant.version + 1,
        "now": now,
        **bound(change.changes, "set_"),
    }


@functools.lru_cache(maxsize=256)
def _transition_statement(
    columns: tuple[str, ...], event: bool, record: RecordShape | None
) -> Select[Any]:
    """PostgreSQL's one statement of a transition setting ``columns``: the compare-and-set
    (:func:`_compare_and_set`), then, conditional on its row, the audit row (parameters
    ``audit_<column>``), with ``event`` its outbound event (:func:`event_parameters`), and
    with ``record`` the operation's record (:func:`_record_after`). Returns the new row and
    ``recorded``, whether the record was made."""
    cas = _compare_and_set(columns).cte("transitioned")
    writes: builtins.list[Insert] = [insert_after(cas, AUDIT_EVENTS, _AUDIT_COLUMNS, "audit_")]
    if event:
        writes.append(numbered_event(after=cas))
    recorded: ColumnElement[bool] = true()
    if record is not None:
        recorded = exists(_record_after(cas, *record).cte("recorded").select())
    ctes = [write.cte(f"write_{i}") for i, write in enumerate(writes)]
    return select(cas, recorded.label("recorded")).add_cte(*ctes)


def _record_shape(update_: OperationUpdate) -> RecordShape:
    """The :data:`RecordShape` of ``update_``."""
    return update_.status != "running", tuple(TenantRepository._operation_values(update_))


def _record_columns(ended: bool, columns: tuple[str, ...]) -> tuple[str, ...]:
    """The ``operations`` columns the record of a run inserts (:func:`_record_after`)."""
    row = ("workflow_id", "run_id", "tenant_id", "kind", "started_at", *columns)
    return (*row, "finished_at", "duration_seconds") if ended else row


def _record_parameters(update_: OperationUpdate, run_id: str, now: datetime) -> dict[str, Any]:
    """The parameters (``op_<column>``) of :func:`_record_after` for ``update_`` of run
    ``run_id`` at ``now``."""
    row = {
        "workflow_id": update_.workflow_id,
        "run_id": run_id,
        "tenant_id": update_.tenant_id,
        "kind": update_.kind,
        "started_at": now,
        **TenantRepository._operation_values(update_),
    }
    if update_.status != "running":
        row |= {"finished_at": now, "duration_seconds": 0.0}
    return bound(row, "op_")


def _record_after(after: CTE, ended: bool, columns: tuple[str, ...]) -> Insert:
    """PostgreSQL's upsert of an operation record (``ended``: it ends the run; ``columns``:
    the ones it sets, of :meth:`TenantRepository._operation_values`) into the ``operations``
    row of its run, parameters :func:`_record_parameters`. It keeps the rules of
    :meth:`TenantRepository.record_operation`: a step's record never overwrites an ended row;
    an end sets ``finished_at`` and ``duration_seconds`` once. Made only when ``after`` has a
    row and the workflow has no running row recorded before run ids were kept (that one is
    adopted by :meth:`TenantRepository.record_operation` instead). Returns the row's workflow
    id when it wrote."""
    ops = OPERATIONS
    names = _record_columns(ended, columns)
    row = parameters(ops, names, "op_")
    legacy = exists().where(
        ops.c.workflow_id == row["workflow_id"], ops.c.run_id == "", ops.c.status == "running"
    )
    upsert = postgresql.insert(ops).from_select(
        list(row), select(*row.values()).select_from(after).where(~legacy)
    )
    key = [ops.c.workflow_id, ops.c.run_id]
    values = {name: row[name] for name in columns}
    if ended:
        at = row["finished_at"]
        first_end = ops.c.finished_at.is_(None)
        done = upsert.on_conflict_do_update(
            index_elements=key,
            set_=values
            | {
                "finished_at": func.coalesce(ops.c.finished_at, at),
                "duration_seconds": case(
                    (first_end, extract("epoch", at - ops.c.started_at)),
                    else_=ops.c.duration_seconds,
                ),
            },
        )
    else:
        done = upsert.on_conflict_do_update(
            index_elements=key, set_=values, where=ops.c.status == "running"
        )
    return done.returning(ops.c.workflow_id)


@functools.lru_cache(maxsize=16)
def _step_statement(columns: tuple[str, ...]) -> Update:
    """The UPDATE recording a step into its run's ``running`` row, setting ``columns``
    (parameters ``op_<column>``, ``op_workflow_id`` and ``op_run_id``)."""
    ops = OPERATIONS
    return (
        update(ops)
        .where(
            ops.c.workflow_id == bindparam("op_workflow_id"),
            ops.c.run_id == bindparam("op_run_id"),
            ops.c.status == "running",
        )
        .values(**parameters(ops, columns, "op_"))
    )


@functools.cache
def _provision_statement() -> Select[Any]:
    """PostgreSQL's one statement of the provisioning step: lock the tenant's row while its
    dunning status is the one read (``dunning``: its JSON text, compared as ``jsonb``),
    upsert the entitlements ``resources`` -> ``limits`` (two arrays), delete the others, and
    add the audit row (``audit_<column>``) and its event (:func:`event_parameters`) unless
    one of the workflow carries ``key``. Returns ``locked``: whether it applied."""
    tenant_id = bindparam("tenant_id", type_=TENANTS.c.id.type)
    stored = func.coalesce(sa.cast(TENANTS.c.dunning, JSONB), sa.cast(literal("null"), JSONB))
    locked = (
        select(TENANTS.c.id)
        .where(TENANTS.c.id == tenant_id, stored == sa.cast(bindparam("dunning"), JSONB))
        .with_for_update()
        .cte("locked")
    )
    kept = ENTITLEMENTS.c
    resources = bindparam("resources", type_=postgresql.ARRAY(kept.resource.type))
    limits = bindparam("limits", type_=postgresql.ARRAY(kept.limit.type))
    given = (
        func.unnest(resources, limits)
        .table_valued("resource", "limit")
        .render_derived(name="given")
    )
    upsert = postgresql.insert(ENTITLEMENTS).from_select(
        ["tenant_id", "resource", "limit", "updated_at"],
        select(
            locked.c.id,
            given.c.resource,
            given.c.limit,
            bindparam("now", type_=kept.updated_at.type),
        ).select_from(locked.join(given, true())),
    )
    audited = AUDIT_EVENTS.c
    seen = exists().where(
        audited.tenant_id == tenant_id,
        audited.workflow_id == bindparam("audit_workflow_id"),
        audited.operation == bindparam("audit_operation"),
        audited.detail["key"].as_string() == bindparam("key"),
    )
    fresh = select(locked.c.id).where(~seen).cte("fresh")
    writes: builtins.list[Any] = [
        delete(ENTITLEMENTS).where(
            kept.tenant_id == tenant_id,
            kept.resource != sa.all_(resources),
            exists(locked.select()),
        ),
        upsert.on_conflict_do_update(
            index_elements=[kept.tenant_id, kept.resource],
            set_={"limit": upsert.excluded.limit, "updated_at": upsert.excluded.updated_at},
        ),
        insert_after(fresh, AUDIT_EVENTS, _AUDIT_COLUMNS, "audit_"),
        numbered_event(after=fresh),
    ]
    ctes = [write.cte(f"write_{i}") for i, write in enumerate(writes)]
    return select(exists(locked.select()).label("locked")).add_cte(*ctes)
