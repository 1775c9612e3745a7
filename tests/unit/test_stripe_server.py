"""The Stripe-compatible test server itself, driven by the official SDK: the semantics the
product's tests rely on (idempotency, errors, failure switches)."""

import json

import pytest
import stripe

from activities.billing import make_stripe_client
from tests.support.stripe_server import StripeServer, sign_webhook


async def test_idempotency_customers_and_failure_switches(stripe_server: StripeServer) -> None:
    client = make_stripe_client(stripe_server.api_key, stripe_server.url)
    assert client is not None
    params = {"name": "Acme", "email": "a@acme.io"}
    first = await client.v1.customers.create_async(params, {"idempotency_key": "k1"})
    again = await client.v1.customers.create_async(params, {"idempotency_key": "k1"})
    assert first.id == again.id and len(stripe_server.customers) == 1
    assert [e.replayed for e in stripe_server.journal] == [False, True]
    with pytest.raises(stripe.IdempotencyError):
        await client.v1.customers.create_async({"name": "Other"}, {"idempotency_key": "k1"})

    sub = await client.v1.subscriptions.create_async(
        {"customer": first.id, "items": [{"price": "price_starter"}]}
    )
    item = sub["items"]["data"][0]["id"]
    stripe_server.fail("POST", "/v1/subscription_items/", "card_declined")
    with pytest.raises(stripe.CardError) as declined:
        await client.v1.subscription_items.update_async(
            item, {"price": "price_enterprise"}, {"idempotency_key": "k2"}
        )
    assert declined.value.code == "card_declined"
    with pytest.raises(stripe.CardError):  # a stored result: the same key keeps declining
        await client.v1.subscription_items.update_async(
            item, {"price": "price_enterprise"}, {"idempotency_key": "k2"}
        )
    with pytest.raises(stripe.InvalidRequestError, match="proration_behavior"):
        await client.v1.subscription_items.update_async(
            item, {"price": "price_enterprise", "proration_behavior": "sometimes"}
        )
    stripe_server.fail("POST", "/v1/subscription_items/", "server_error")
    with pytest.raises(stripe.APIError):
        await client.v1.subscription_items.update_async(
            item, {"price": "price_enterprise"}, {"idempotency_key": "k3"}
        )
    # nothing was executed by the 500, so its retry executes
    await client.v1.subscription_items.update_async(
        item, {"price": "price_enterprise"}, {"idempotency_key": "k3"}
    )
    assert stripe_server.item_price(sub.id) == "price_enterprise"

    deleted = await client.v1.customers.delete_async(first.id)
    assert deleted.deleted is True and first.id not in stripe_server.customers
    with pytest.raises(stripe.InvalidRequestError) as missing:
        await client.v1.subscriptions.retrieve_async("sub_nope")
    assert missing.value.code == "resource_missing"


def test_sign_webhook_is_accepted_by_the_stripe_sdk() -> None:
    payload = json.dumps({"id": "evt_1", "object": "event", "type": "invoice.payment_failed"})
    event = stripe.Webhook.construct_event(payload, sign_webhook(payload, "whsec_x"), "whsec_x")
    assert event.type == "invoice.payment_failed"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(payload, sign_webhook(payload, "other"), "whsec_x")
