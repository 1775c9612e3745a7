"""``/webhooks/stripe``: billing events, authenticated by their signature (no bearer token)."""

from __future__ import annotations

from typing import Annotated

import stripe
from fastapi import APIRouter, Header, Request

from lifecycle.api.deps import Lifecycle
from lifecycle.api.problems import ProblemError
from lifecycle.client.billing_events import verify_event
from lifecycle.domain.billing_events import StripeEventOutcome

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


@router.post("/stripe")
async def stripe_webhook(
    request: Request,
    lifecycle: Lifecycle,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> StripeEventOutcome:
    """Verify the ``Stripe-Signature`` with STRIPE_WEBHOOK_SECRET (400 when bad or older than
    300 s, nothing done), then process the event once per event id."""
    secret = lifecycle.settings.stripe_webhook_secret
    if secret is None:
        raise ProblemError(503, "STRIPE_WEBHOOK_SECRET is not set: billing webhooks are off")
    payload = await request.body()
    try:
        event = verify_event(payload, stripe_signature, secret.get_secret_value())
    except stripe.SignatureVerificationError as exc:
        raise ProblemError(400, f"invalid Stripe-Signature: {exc.user_message or exc}") from exc
    except ValueError as exc:
        raise ProblemError(400, f"the payload is not a Stripe event: {exc}") from exc
    return await lifecycle.billing_events.handle_stripe_event(event)
