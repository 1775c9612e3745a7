"""``/events``: deliveries of outbound lifecycle events and their redelivery (issue 17)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from lifecycle.api.deps import Lifecycle, Operator, Viewer
from lifecycle.domain.events import DeliveryStatus, DeliveryView, RedeliveryStarted
from lifecycle.domain.tenants import TENANT_ID_PATTERN

router = APIRouter(prefix="/events", tags=["events"])

#: Outbox ids are 32-bit integers in every supported database.
EventId = Annotated[int, Path(ge=1, le=2**31 - 1, description="the event's id")]


@router.get("/deliveries", response_model=list[DeliveryView])
async def deliveries(
    lifecycle: Lifecycle,
    _: Viewer,
    status: DeliveryStatus | None = None,
    tenant_id: Annotated[str | None, Query(max_length=63, pattern=TENANT_ID_PATTERN)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> list[DeliveryView]:
    """Deliveries of events to the endpoints (EVENT_WEBHOOK_URLS, the provisioning webhook),
    latest event first; ``?status=failed`` lists those whose retries ran out."""
    return await lifecycle.outbound_events.deliveries(
        status=status, tenant_id=tenant_id, limit=limit, offset=offset
    )


@router.post("/{event_id}/redeliver", status_code=202, response_model=RedeliveryStarted)
async def redeliver(event_id: EventId, lifecycle: Lifecycle, _: Operator) -> RedeliveryStarted:
    """Deliver the event again to every endpoint that has not had it (a new run of its
    delivery workflow); 404 for an unknown event, 409 while a delivery of it runs."""
    return await lifecycle.outbound_events.redeliver(event_id)
