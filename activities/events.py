"""Delivery of outbound lifecycle events to the application's endpoints (EVENT_WEBHOOK_URLS).

Each event is POSTed as JSON, signed with the provisioning webhook's scheme
(:func:`activities.provisioning.sign`, key EVENT_WEBHOOK_SECRET or the provisioning one):

    X-Lifecycle-Signature: sha256=<hex HMAC-SHA256(secret, body)>
    X-Lifecycle-Timestamp: <unix seconds, also "sent_at" in the body: the signature covers it>
    X-Lifecycle-Event: <event type>
    Idempotency-Key: event-<event id> (the same for every attempt)

The body is ``{"id", "type", "tenant_id", "sequence", "occurred_at", "data", "sent_at"}``;
``sequence`` grows by one per tenant, so a receiver can order events and drop repeats.
"""

from __future__ import annotations

import json
import time

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import domain_errors
from activities.provisioning import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from lifecycle.domain.errors import ConfigError
from lifecycle.domain.events import DeliveryFailure, EventDeliveryInput
from lifecycle.domain.text import redact
from lifecycle.faults import fault_point
from lifecycle.persistence.events import EventRepository

EVENT_HEADER = "X-Lifecycle-Event"


class EventActivities:
    """POSTs outbox events to ``endpoints`` and keeps the delivery rows.

    Raises ConfigError when endpoints are given without a secret (events must be signed).
    """

    def __init__(
        self,
        repository: EventRepository,
        endpoints: list[str],
        secret: str | None,
        timeout_seconds: float = 10.0,
    ) -> None:
        if endpoints and not secret:
            raise ConfigError(
                "EVENT_WEBHOOK_URLS is set but neither EVENT_WEBHOOK_SECRET nor "
                "PROVISIONING_WEBHOOK_SECRET is: lifecycle events must be signed"
            )
        self.repository, self.endpoints, self.secret = repository, endpoints, secret
        self.timeout_seconds = timeout_seconds

    @activity.defn
    @domain_errors
    async def open_event_deliveries(self, data: EventDeliveryInput) -> list[int]:
        """One delivery row per configured endpoint (idempotent); returns the ids of those
        not delivered yet (failed ones are pending again: a redelivery)."""
        return await self.repository.open_deliveries(
            data.event_id, [redact(u) for u in self.endpoints]
        )

    @activity.defn
    @domain_errors
    async def deliver_event(self, delivery_id: int) -> int:
        """POST the delivery's event to its endpoint, signed; returns the HTTP status.

        Exactly once per delivery under retries: a delivery already recorded as delivered
        is not POSTed again. 2xx is delivered; 5xx, 408, 429 and network errors are retried
        (``EventReceiverUnavailable``), as is any other 4xx (``EventRejected``: a receiver
        fixed later gets the event); an endpoint removed from EVENT_WEBHOOK_URLS is final.
        Every attempt is counted on the delivery row with its status or error.
        """
        delivery, index, event = await self.repository.delivery(delivery_id)
        if delivery.status == "delivered":
            return delivery.last_status_code or 200
        if index >= len(self.endpoints) or redact(self.endpoints[index]) != delivery.endpoint:
            raise ApplicationError(
                f"endpoint {delivery.endpoint} is no longer in EVENT_WEBHOOK_URLS",
                type="EventEndpointRemoved",
                non_retryable=True,
            )
        assert self.secret is not None
        sent_at = int(time.time())
        body = json.dumps(event.body(sent_at), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.secret),
            TIMESTAMP_HEADER: str(sent_at),
            EVENT_HEADER: event.type,
            "Idempotency-Key": f"event-{event.event_id}",
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds) as http:
                response = await http.post(self.endpoints[index], content=body, headers=headers)
        except httpx.HTTPError as exc:
            error = redact(f"{type(exc).__name__}: {exc}")
            await self.repository.record_attempt(delivery_id, "pending", error=error)
            raise ApplicationError(error, type="EventReceiverUnavailable") from exc
        if response.is_success:
            await self.repository.record_attempt(
                delivery_id, "delivered", status_code=response.status_code
            )
            fault_point("events.after_deliver")
            return response.status_code
        error = f"receiver answered {response.status_code}: {redact(response.text[:200])}"
        await self.repository.record_attempt(
            delivery_id, "pending", status_code=response.status_code, error=error
        )
        unavailable = response.status_code >= 500 or response.status_code in (408, 429)
        raise ApplicationError(
            error, type="EventReceiverUnavailable" if unavailable else "EventRejected"
        )

    @activity.defn
    @domain_errors
    async def fail_event_delivery(self, data: DeliveryFailure) -> None:
        """Mark the delivery failed once its retries are exhausted (listed by
        ``GET /events/deliveries?status=failed``, redelivered on request)."""
        await self.repository.mark_failed(data.delivery_id, data.error)
