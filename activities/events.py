"""Delivery of outbound lifecycle events to the application's endpoints: each of
EVENT_WEBHOOK_URLS gets every event, the provisioning webhook (PROVISIONING_WEBHOOK_URL) those
that change the entitlements (:class:`~lifecycle.domain.events.EventEndpoint`).

Each event is POSTed as JSON, signed with the endpoint's key (:func:`sign`; EVENT_WEBHOOK_SECRET
or the provisioning one for EVENT_WEBHOOK_URLS, PROVISIONING_WEBHOOK_SECRET for the
provisioning webhook):

    X-Lifecycle-Signature: sha256=<hex HMAC-SHA256(secret, body)>
    X-Lifecycle-Timestamp: <unix seconds, also "sent_at" in the body: the signature covers it>
    X-Lifecycle-Event: <event type>
    Idempotency-Key: event-<event id> (the same for every attempt)

The body is ``{"id", "type", "tenant_id", "sequence", "occurred_at", "data", "sent_at"}``;
``sequence`` grows by one per tenant, so a receiver can order events and drop repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import domain_errors
from lifecycle.domain.errors import ConfigError
from lifecycle.domain.events import DeliveryFailure, EventDeliveryInput, EventEndpoint
from lifecycle.domain.text import redact
from lifecycle.faults import fault_point
from lifecycle.persistence.events import EventRepository

SIGNATURE_HEADER = "X-Lifecycle-Signature"
TIMESTAMP_HEADER = "X-Lifecycle-Timestamp"
EVENT_HEADER = "X-Lifecycle-Event"


def sign(body: bytes, secret: str) -> str:
    """The signature header value for ``body``: ``sha256=<hex HMAC-SHA256(secret, body)>``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class EventActivities:
    """POSTs outbox events to the ``endpoints`` that subscribe to them and keeps the delivery
    rows (Settings.event_subscribers: a delivery row refers to its endpoint by index).

    Raises ConfigError when an endpoint has no secret (events must be signed).
    """

    def __init__(
        self,
        repository: EventRepository,
        endpoints: list[EventEndpoint],
        timeout_seconds: float = 10.0,
    ) -> None:
        for endpoint in endpoints:
            if not endpoint.secret:
                raise ConfigError(f"{endpoint.setting} has no secret: events must be signed")
        self.repository, self.endpoints = repository, endpoints
        self.timeout_seconds = timeout_seconds

    @activity.defn
    @domain_errors
    async def open_event_deliveries(self, data: EventDeliveryInput) -> list[int]:
        """One delivery row per endpoint that subscribes to the event's type (idempotent);
        returns the ids of those not delivered yet (failed ones are pending again: a
        redelivery). Raises EventNotFound."""
        event = await self.repository.event(data.event_id)
        return await self.repository.open_deliveries(
            data.event_id,
            {
                index: redact(endpoint.url)
                for index, endpoint in enumerate(self.endpoints)
                if endpoint.subscribes(event.type)
            },
        )

    @activity.defn
    @domain_errors
    async def deliver_event(self, delivery_id: int) -> int:
        """POST the delivery's event to its endpoint, signed; returns the HTTP status.

        Exactly once per delivery under retries: a delivery already recorded as delivered
        is not POSTed again. 2xx is delivered; 5xx, 408, 429 and network errors are retried
        (``EventReceiverUnavailable``), as is any other 4xx (``EventRejected``: a receiver
        fixed later gets the event); an endpoint no longer configured is final.
        Every attempt is counted on the delivery row with its status or error.
        """
        delivery, index, event = await self.repository.delivery(delivery_id)
        if delivery.status == "delivered":
            return delivery.last_status_code or 200
        endpoint = self._endpoint(index, delivery.endpoint)
        sent_at = int(time.time())
        body = json.dumps(event.body(sent_at), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, endpoint.secret),
            TIMESTAMP_HEADER: str(sent_at),
            EVENT_HEADER: event.type,
            "Idempotency-Key": f"event-{event.event_id}",
        }
        try:
            async with httpx.AsyncClient(timeout=self.timeout_seconds) as http:
                response = await http.post(endpoint.url, content=body, headers=headers)
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

    def _endpoint(self, index: int, redacted: str) -> EventEndpoint:
        """The configured endpoint of a delivery row: the one at its index, else (the list
        changed meanwhile, e.g. a URL added before the provisioning webhook) the one with its
        URL. Raises a non-retryable ``EventEndpointRemoved`` when there is none."""
        if index < len(self.endpoints) and redact(self.endpoints[index].url) == redacted:
            return self.endpoints[index]
        for endpoint in self.endpoints:
            if redact(endpoint.url) == redacted:
                return endpoint
        raise ApplicationError(
            f"endpoint {redacted} is no longer configured (EVENT_WEBHOOK_URLS, "
            "PROVISIONING_WEBHOOK_URL)",
            type="EventEndpointRemoved",
            non_retryable=True,
        )

    @activity.defn
    @domain_errors
    async def fail_event_delivery(self, data: DeliveryFailure) -> None:
        """Mark the delivery failed once its retries are exhausted (listed by
        ``GET /events/deliveries?status=failed``, redelivered on request)."""
        await self.repository.mark_failed(data.delivery_id, data.error)
