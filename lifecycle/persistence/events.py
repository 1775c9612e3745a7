"""The outbox of lifecycle events and their deliveries (issue 17, item 5).

:func:`emit_for_audit` is called inside the transaction that writes the audit row an event
stems from, so an event exists exactly when its audit row does. :class:`EventRepository` reads
the outbox for the relay (``lc.events.dispatch_pending``) and keeps one delivery row per event
and endpoint for the delivery workflow and ``GET /events/deliveries``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import CTE, BindParameter, Insert, Table, bindparam, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from lifecycle.domain.errors import LifecycleError
from lifecycle.domain.events import (
    DeliveryStatus,
    DeliveryView,
    EventType,
    OutboundEventView,
    event_type,
)
from lifecycle.persistence.engine import Sessions
from lifecycle.persistence.tables import (
    OUTBOUND_EVENTS,
    Entitlement,
    EventDelivery,
    LifecycleEvent,
    OutboundEvent,
    Tenant,
    TenantEventSequence,
    utcnow,
)


class EventNotFound(LifecycleError):
    """No outbound event (or delivery) with this id (404)."""

    status = 404
    title = "Event not found"


#: Where a Core statement of the outbox runs: an ORM session's transaction, or a connection's.
Executor = AsyncSession | AsyncConnection


async def emit_for_audit(
    session: AsyncSession,
    audit: LifecycleEvent,
    *,
    type_: EventType | None = None,
    plan_changed: bool = False,
    **data: Any,
) -> None:
    """Add the event that audit row ``audit`` emits (``type_``, else :func:`event_type`), if
    any, to the outbox in ``session``'s transaction (see :func:`emit_event`)."""
    type_ = type_ or event_type(
        audit.operation, audit.from_state, audit.to_state, plan_changed=plan_changed
    )
    if type_ is None:
        return
    tenant = await session.get(Tenant, audit.tenant_id)
    rows = await session.scalars(
        select(Entitlement).where(Entitlement.tenant_id == audit.tenant_id)
    )  # autoflush: the entitlements this transaction wrote
    plan = tenant.plan if tenant is not None else None
    await emit_event(
        session,
        type_=type_,
        tenant_id=audit.tenant_id,
        data_key=tenant.data_key if tenant is not None else None,
        plan=data.pop("plan", plan),
        entitlements=data.pop("entitlements", {row.resource: int(row.limit) for row in rows}),
        operation=audit.operation,
        from_state=audit.from_state,
        to_state=audit.to_state,
        workflow_id=audit.workflow_id,
        actor=audit.actor,
        detail=audit.detail,
        at=audit.at,
        **data,
    )


async def emit_event(db: Executor, *, tenant_id: str, at: datetime, **columns: Any) -> None:
    """Add the event an audit row of ``tenant_id`` written ``at`` emits (:func:`outbound_event`
    of ``columns``), if any, to the outbox in ``db``'s transaction."""
    event = outbound_event(**columns)
    if event is not None:
        await add_outbound_event(db, tenant_id, *event, at)


def outbound_event(
    *,
    type_: EventType | None = None,
    data_key: str | None,
    plan: str | None,
    entitlements: dict[str, int],
    operation: str,
    from_state: str | None,
    to_state: str | None,
    workflow_id: str | None,
    actor: str,
    detail: dict[str, Any] | None,
    plan_changed: bool = False,
    **data: Any,
) -> tuple[EventType, dict[str, Any]] | None:
    """The event an audit row with these columns emits (``type_``, else :func:`event_type`)
    and its data, or None. The data are the row's operation, states, workflow id, actor and
    detail, the tenant's data key (how the application knows the tenant), ``plan`` and
    ``entitlements`` (resource -> limit in force once the transaction commits: what the
    provisioning webhook applies), plus ``data`` (which wins)."""
    type_ = type_ or event_type(operation, from_state, to_state, plan_changed=plan_changed)
    if type_ is None:
        return None
    return type_, {
        "operation": operation,
        "from_state": from_state,
        "to_state": to_state,
        "workflow_id": workflow_id,
        "actor": actor,
        "detail": dict(detail or {}),
        "data_key": data_key,
        "plan": plan,
        "entitlements": entitlements,
        **data,
    }


async def add_outbound_event(
    db: Executor,
    tenant_id: str,
    type_: EventType,
    data: dict[str, Any],
    at: datetime,
) -> None:
    """Add event ``type_`` of ``tenant_id`` to the outbox in ``db``'s transaction, with
    the tenant's next sequence number.

    The number comes from an upsert of ``tenant_event_sequences`` that increments the row in
    place: the row lock it takes serialises concurrent writers of one tenant until commit,
    so numbers are gap-free and grow in commit order. On PostgreSQL the upsert and the
    insert are one statement (:func:`numbered_event`): one round trip.
    """
    if isinstance(db, AsyncConnection):
        dialect = db.dialect.name
    else:
        assert db.bind is not None
        dialect = db.bind.dialect.name
    if dialect == "postgresql":
        await db.execute(_NUMBERED_EVENT, event_parameters(tenant_id, type_, data, at))
        return
    upsert = sqlite.insert(TenantEventSequence).values(tenant_id=tenant_id, last_sequence=1)
    number = (await db.execute(_next_sequence(upsert))).scalar_one()
    await db.execute(
        OUTBOUND_EVENTS.insert().values(
            tenant_id=tenant_id, type=type_.value, occurred_at=at, data=data, sequence=number
        )
    )


def _next_sequence(upsert: Any) -> Any:
    """``upsert`` (an INSERT of a tenant's first sequence number) made to increment the
    tenant's number when it has one, returning the number."""
    return upsert.on_conflict_do_update(
        index_elements=[TenantEventSequence.tenant_id],
        set_={"last_sequence": TenantEventSequence.last_sequence + 1},
    ).returning(TenantEventSequence.last_sequence)


def numbered_event(*, after: CTE | None = None) -> Insert:
    """PostgreSQL's one statement adding an event to the outbox with the tenant's next
    sequence number (the sequence upsert as a common table expression), built once with the
    bind parameters of :func:`event_parameters`. With ``after`` (a common table expression of
    a data-modifying statement), the event is added only when ``after`` wrote a row: the
    statement can then itself be one of a larger statement's expressions."""
    tenant_id = bindparam("event_tenant_id", type_=TenantEventSequence.tenant_id.type)
    first = select(tenant_id, literal(1))
    if after is not None:
        first = first.select_from(after)
    sequence = _next_sequence(
        postgresql.insert(TenantEventSequence).from_select(["tenant_id", "last_sequence"], first)
    ).cte("sequence")
    columns = ["tenant_id", "type", "occurred_at", "data"]
    return OUTBOUND_EVENTS.insert().from_select(
        [*columns, "sequence"],
        select(*parameters(OUTBOUND_EVENTS, columns, "event_").values(), sequence.c.last_sequence),
    )


def event_parameters(
    tenant_id: str, type_: EventType, data: dict[str, Any], at: datetime
) -> dict[str, Any]:
    """The parameters of :func:`numbered_event` for event ``type_`` of ``tenant_id`` with
    ``data``, occurred ``at`` (UTC)."""
    row = {"tenant_id": tenant_id, "type": type_.value, "occurred_at": at, "data": data}
    return bound(row, "event_")


def parameters(table: Table, names: Iterable[str], prefix: str) -> dict[str, BindParameter[Any]]:
    """Column name -> bind parameter ``<prefix><name>`` typed by ``table``'s column, for each
    of ``names``: the values of a statement built once and run many times (:func:`bound`
    names the values)."""
    return {name: bindparam(f"{prefix}{name}", type_=table.c[name].type) for name in names}


def bound(row: dict[str, Any], prefix: str) -> dict[str, Any]:
    """``row``'s values under the names :func:`parameters` gives them with ``prefix``."""
    return {f"{prefix}{name}": value for name, value in row.items()}


def insert_after(after: CTE, table: Table, names: Sequence[str], prefix: str) -> Insert:
    """The INSERT into ``table`` of the row whose columns ``names`` are bind parameters
    (:func:`parameters` with ``prefix``), made only when ``after`` (a common table expression
    of a data-modifying statement, PostgreSQL) wrote a row."""
    return table.insert().from_select(
        list(names), select(*parameters(table, names, prefix).values()).select_from(after)
    )


#: :func:`numbered_event` alone, built once (SQLAlchemy memoises a statement's cache key).
_NUMBERED_EVENT = numbered_event()


def _event_view(row: OutboundEvent) -> OutboundEventView:
    return OutboundEventView(
        event_id=row.id,
        type=row.type,
        tenant_id=row.tenant_id,
        sequence=row.sequence,
        occurred_at=row.occurred_at,
        data=dict(row.data or {}),
    )


def _delivery_view(row: EventDelivery, event: OutboundEvent) -> DeliveryView:
    return DeliveryView(
        delivery_id=row.id,
        event_id=event.id,
        event_type=event.type,
        tenant_id=event.tenant_id,
        sequence=event.sequence,
        endpoint=row.endpoint,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
        updated_at=row.updated_at,
    )


class EventRepository:
    """Outbox reads and delivery bookkeeping on the control-plane database."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def events(self, tenant_id: str, *, limit: int = 100) -> list[OutboundEventView]:
        """The tenant's outbound events, by sequence."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(OutboundEvent)
                .where(OutboundEvent.tenant_id == tenant_id)
                .order_by(OutboundEvent.sequence)
                .limit(limit)
            )
            return [_event_view(r) for r in rows]

    async def event(self, event_id: int) -> OutboundEventView:
        """One outbound event; raises :class:`EventNotFound`."""
        async with self.sessions() as session:
            row = await session.get(OutboundEvent, event_id)
            if row is None:
                raise EventNotFound(f"event {event_id} does not exist")
            return _event_view(row)

    async def undispatched(self, limit: int = 100) -> list[OutboundEventView]:
        """Events whose delivery workflow was not started yet, oldest first."""
        async with self.sessions() as session:
            rows = await session.scalars(
                select(OutboundEvent)
                .where(OutboundEvent.dispatched_at.is_(None))
                .order_by(OutboundEvent.id)
                .limit(limit)
            )
            return [_event_view(r) for r in rows]

    async def mark_dispatched(self, event_id: int) -> None:
        """Record that the delivery workflow of ``event_id`` was started."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(OutboundEvent)
                .where(OutboundEvent.id == event_id, OutboundEvent.dispatched_at.is_(None))
                .values(dispatched_at=utcnow())
            )

    async def open_deliveries(self, event_id: int, endpoints: dict[int, str]) -> list[int]:
        """Ensure one delivery row per endpoint of ``endpoints`` (the configured endpoint's
        index -> its redacted URL; those that subscribe to the event) and return the ids of
        those not delivered yet, by endpoint; failed ones become pending again (a
        redelivery). Idempotent. Raises :class:`EventNotFound`."""
        now = utcnow()
        async with self.sessions.begin() as session:
            if await session.get(OutboundEvent, event_id) is None:
                raise EventNotFound(f"event {event_id} does not exist")
            rows = {
                r.endpoint_index: r
                for r in await session.scalars(
                    select(EventDelivery).where(EventDelivery.event_id == event_id)
                )
            }
            for index, endpoint in endpoints.items():
                if index not in rows:
                    rows[index] = EventDelivery(
                        event_id=event_id,
                        endpoint_index=index,
                        endpoint=endpoint,
                        status="pending",
                        attempts=0,
                        updated_at=now,
                    )
                    session.add(rows[index])
                elif rows[index].status == "failed":
                    rows[index].status, rows[index].updated_at = "pending", now
            await session.flush()
            return [
                rows[i].id for i in sorted(rows) if i in endpoints and rows[i].status != "delivered"
            ]

    async def delivery(self, delivery_id: int) -> tuple[DeliveryView, int, OutboundEventView]:
        """A delivery, its endpoint index and its event; raises :class:`EventNotFound`."""
        async with self.sessions() as session:
            row = await session.get(EventDelivery, delivery_id)
            if row is None:
                raise EventNotFound(f"delivery {delivery_id} does not exist")
            event = await session.get(OutboundEvent, row.event_id)
            assert event is not None  # foreign key
            return _delivery_view(row, event), row.endpoint_index, _event_view(event)

    async def record_attempt(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        *,
        status_code: int | None = None,
        error: str | None = None,
    ) -> None:
        """Count one POST of the delivery and store its outcome (``delivered`` sets
        ``delivered_at``; a failure keeps the status ``pending`` for the next retry). A
        failed attempt that ends after the delivery gave up (its retry window closed while
        the POST was in flight) leaves it ``failed``: only a redelivery reopens it."""
        now = utcnow()
        async with self.sessions.begin() as session:
            row = await session.get(EventDelivery, delivery_id, with_for_update=True)
            if row is None:
                raise EventNotFound(f"delivery {delivery_id} does not exist")
            row.attempts += 1
            if not (row.status == "failed" and status == "pending"):
                row.status = status
            row.last_status_code, row.updated_at = status_code, now
            row.last_error = error
            if status == "delivered":
                row.delivered_at = now

    async def mark_failed(self, delivery_id: int, error: str) -> None:
        """The delivery gave up (retries exhausted): status ``failed`` with ``error``, unless
        it was delivered meanwhile."""
        async with self.sessions.begin() as session:
            await session.execute(
                update(EventDelivery)
                .where(EventDelivery.id == delivery_id, EventDelivery.status != "delivered")
                .values(status="failed", last_error=error, updated_at=utcnow())
            )

    async def deliveries(
        self,
        *,
        status: DeliveryStatus | None = None,
        tenant_id: str | None = None,
        event_id: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeliveryView]:
        """Deliveries, latest event first, filtered by status, tenant and event."""
        query = select(EventDelivery, OutboundEvent).join(
            OutboundEvent, OutboundEvent.id == EventDelivery.event_id
        )
        if status is not None:
            query = query.where(EventDelivery.status == status)
        if tenant_id is not None:
            query = query.where(OutboundEvent.tenant_id == tenant_id)
        if event_id is not None:
            query = query.where(EventDelivery.event_id == event_id)
        query = query.order_by(OutboundEvent.id.desc(), EventDelivery.endpoint_index)
        async with self.sessions() as session:
            rows = await session.execute(query.limit(limit).offset(offset))
            return [_delivery_view(d, e) for d, e in rows.all()]
