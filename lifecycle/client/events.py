"""Outbound lifecycle events: the outbox relay, the deliveries and redelivery (issue 17)."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import SQLAlchemyError
from temporalio.service import RPCError

from lifecycle.client.base import Service
from lifecycle.domain.errors import StateConflict
from lifecycle.domain.events import (
    DeliveryStatus,
    DeliveryView,
    EventDeliveryInput,
    OutboundEventView,
    RedeliveryStarted,
)
from lifecycle.domain.operations import OperationKind
from lifecycle.persistence.events import EventRepository

log = logging.getLogger(__name__)


class EventService(Service):
    """Starts the delivery workflow of each new outbox event and reads the deliveries."""

    @property
    def repository(self) -> EventRepository:
        return EventRepository(self.core.repository.sessions)

    async def _start(self, event: OutboundEventView) -> str:
        from workflows.events import EventDeliveryWorkflow

        started = await self.core.start(
            EventDeliveryWorkflow.run,
            EventDeliveryInput(
                event_id=event.event_id,
                tenant_id=event.tenant_id,
                retry_days=self.core.settings.event_delivery_retry_days,
            ),
            tenant_id=event.tenant_id,
            kind=OperationKind.EVENT,
            suffix=str(event.event_id),
        )
        return started.workflow_id

    async def dispatch_pending(self, limit: int = 100) -> int:
        """Start the delivery workflow of up to ``limit`` outbox events not dispatched yet,
        oldest first; returns how many were dispatched.

        Safe from several workers at once and after a crash between the start and the mark:
        a workflow id already running (``tenant-<id>-event-<n>``) counts as dispatched, and
        the delivery rows skip what was delivered.
        """
        events = await self.repository.undispatched(limit)
        for event in events:
            try:
                await self._start(event)
            except StateConflict:
                pass  # another relay started it
            await self.repository.mark_dispatched(event.event_id)
        return len(events)

    async def relay(self, interval_seconds: float) -> None:
        """Dispatch new events every ``interval_seconds`` until cancelled (the worker runs it
        when EVENT_WEBHOOK_URLS or PROVISIONING_WEBHOOK_URL is set). A failed round (database
        or Temporal down) is logged and tried again next round: the events wait in the outbox
        meanwhile."""
        while True:
            try:
                while await self.dispatch_pending() > 0:
                    pass
            except (RPCError, OSError, SQLAlchemyError) as exc:
                log.warning("event relay: %s; retrying in %ss", exc, interval_seconds)
            await asyncio.sleep(interval_seconds)

    async def events(self, tenant_id: str, *, limit: int = 100) -> list[OutboundEventView]:
        """The tenant's outbound events by sequence; raises TenantNotFound."""
        await self.core.repository.get(tenant_id)
        return await self.repository.events(tenant_id, limit=limit)

    async def deliveries(
        self,
        *,
        status: DeliveryStatus | None = None,
        tenant_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DeliveryView]:
        """Deliveries of events to endpoints, latest event first."""
        return await self.repository.deliveries(
            status=status, tenant_id=tenant_id, limit=limit, offset=offset
        )

    async def redeliver(self, event_id: int) -> RedeliveryStarted:
        """Deliver event ``event_id`` again to every endpoint that has not had it (failed
        deliveries become pending): a new run of its delivery workflow.

        Raises EventNotFound (404), or StateConflict (409) while a delivery of it still runs.
        """
        event = await self.repository.event(event_id)
        pending = [
            d.delivery_id
            for d in await self.repository.deliveries(event_id=event_id)
            if d.status != "delivered"
        ]
        wid = await self._start(event)
        await self.repository.mark_dispatched(event_id)
        return RedeliveryStarted(event_id=event_id, workflow_id=wid, deliveries=pending)
