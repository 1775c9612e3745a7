"""Event delivery: POST one outbound lifecycle event to every endpoint of EVENT_WEBHOOK_URLS.
Workflow id ``tenant-<id>-event-<event id>``, started by the outbox relay
(``lc.events.dispatch_pending``) and again by a redelivery.

1. Open one delivery row per endpoint (those already delivered are skipped).
2. Deliver to every endpoint at once, each retried with exponential back-off (2 s doubling,
   at most 1 h apart) for EVENT_DELIVERY_RETRY_DAYS (3 days by default).
3. A delivery whose retries ran out is marked ``failed`` (``GET /events/deliveries``).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.events import EventActivities
    from lifecycle.domain.events import DeliveryFailure, DeliveryOutcome, EventDeliveryInput
    from workflows.common import call

#: Back-off between the attempts of one delivery; the horizon is the input's ``retry_days``.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(hours=1),
    non_retryable_error_types=["EventEndpointRemoved", "EventNotFound"],
)


@workflow.defn
class EventDeliveryWorkflow:
    """Deliver event ``data.event_id`` to each endpoint, durably, for up to ``retry_days``."""

    @workflow.run
    async def run(self, data: EventDeliveryInput) -> DeliveryOutcome:
        deliveries = await call(
            EventActivities.open_event_deliveries, data, summary="open deliveries"
        )
        outcome = DeliveryOutcome(event_id=data.event_id)
        ok = await asyncio.gather(*(self._deliver(d, data.retry_days) for d in deliveries))
        for delivery_id, delivered in zip(deliveries, ok, strict=True):
            (outcome.delivered if delivered else outcome.failed).append(delivery_id)
        return outcome

    async def _deliver(self, delivery_id: int, retry_days: float) -> bool:
        try:
            await call(
                EventActivities.deliver_event,
                delivery_id,
                retry_policy=DELIVERY_RETRY,
                schedule_to_close_timeout=timedelta(days=retry_days),
                summary=f"deliver {delivery_id}",
            )
        except ActivityError as err:
            cause = err.cause or err
            await call(
                EventActivities.fail_event_delivery,
                DeliveryFailure(delivery_id=delivery_id, error=str(cause)[:500]),
                summary=f"failed {delivery_id}",
            )
            return False
        return True
