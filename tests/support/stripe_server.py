"""A small Stripe-compatible HTTP server for the tests (test infrastructure, not product code).

The product talks to Stripe through the official ``stripe`` SDK; the tests point that SDK at
this server (``Settings.stripe_api_base``) on 127.0.0.1. It serves exactly the endpoints the
product calls, with Stripe's wire format (form-encoded bodies with ``a[b][0][c]`` keys, JSON
answers, ``{"error": {...}}`` errors with Stripe's types and codes):

- ``POST /v1/customers``, ``GET`` and ``DELETE /v1/customers/{id}`` (a payment method on file:
  :meth:`StripeServer.add_payment_method`)
- ``POST /v1/subscriptions`` (``trial_end``: ``trialing`` until then, ``active`` after),
  ``GET /v1/subscriptions/{id}``, ``DELETE /v1/subscriptions/{id}``
- ``POST /v1/subscriptions/{id}`` (``pause_collection[behavior|resumes_at]``, or
  ``pause_collection=""`` to resume collection); a pause whose ``resumes_at`` passed is
  lifted by time, as Stripe does
- ``POST /v1/subscription_items/{id}`` (``price``, ``proration_behavior``)
- ``GET /v1/invoices`` (``subscription``, ``status``): invoices seeded by the tests
  (:meth:`StripeServer.add_invoice`)
- ``POST /v1/invoices/create_preview`` (``subscription``,
  ``subscription_details[items][0][id|price]``, ``subscription_details[proration_behavior|
  proration_date]``): the upcoming invoice of a price change, prorated to the second
- ``POST /v1/subscription_schedules`` (``from_subscription``), ``GET`` and
  ``POST /v1/subscription_schedules/{id}`` (``phases[i][items][0][price]``,
  ``phases[i][start_date|end_date|iterations]``, ``end_behavior``) and
  ``POST /v1/subscription_schedules/{id}/release``

Prices are objects the server is seeded with (:meth:`StripeServer.add_price`); an unknown price
is Stripe's 400 ``resource_missing``. Each subscription has one period of 30 days from its
creation on its item (``items.data[0].current_period_start/_end``, API >= 2025-03-31).

Time: :meth:`StripeServer.now` is the wall clock plus :attr:`StripeServer.clock_offset`, a
Stripe test clock; :meth:`StripeServer.follow` makes it follow a time-skipping Temporal
server (read before every request), so that a period ends when the workflows' timers say it
does. Before each request the server applies what time has done: an ``active`` schedule
whose phase ended moves the item to the next phase's price (a ``price_changes`` entry with
``source: "schedule"``, no proration) and starts its next period; after its last phase a
schedule with ``end_behavior=release`` is ``released`` (the subscription stays); an active
subscription whose period ended renews (its item's period moves on by 30 days).

Idempotency follows Stripe's documentation: a mutating request with an ``Idempotency-Key``
that the endpoint executed stores its status and body; the same key with the same parameters
answers the stored response (header ``Idempotent-Replayed: true``); the same key with other
parameters is a 400 ``idempotency_error``. A request that fails before the endpoint executes
(the ``server_error`` switch) stores nothing, so its retry executes.

Tests assert on :attr:`StripeServer.journal` (every request, with its idempotency key),
:attr:`StripeServer.price_changes` (each effective change of a subscription item's price) and
:attr:`StripeServer.prorations` (proration lines, negative = credit), and provoke failures with
:meth:`StripeServer.fail`: ``card_declined`` (402 ``card_error``, stored like Stripe does),
``server_error`` (500, nothing executed), ``timeout_after_commit`` (the change is executed and
stored, then the connection is dropped without an answer, as if the client timed out),
``slow`` (the request is held ``seconds`` before it executes and answers normally: a call
still in flight when the test acts; :attr:`StripeServer.in_flight` counts those held),
``http_error`` (answers ``status`` with Stripe's error type for it, nothing executed).

Rate limit: with :attr:`StripeServer.rate_limit` set (mutating requests per second, a token
bucket holding one second's worth), a mutating request over the limit is answered 429
``rate_limit_error`` with ``Retry-After`` (whole seconds) and is not executed;
:attr:`StripeServer.rate_limited` counts those answers.

:func:`sign_webhook` signs an event payload the way Stripe signs webhooks.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from aiohttp import web

PERIOD_SECONDS = 30 * 24 * 3600
PRORATION_BEHAVIORS = {"create_prorations", "always_invoice", "none"}
PAUSE_BEHAVIORS = ("keep_as_draft", "mark_uncollectible", "void")
FailureMode = Literal["card_declined", "server_error", "timeout_after_commit", "slow", "http_error"]


def sign_webhook(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header for ``payload``: ``t=<unix seconds>,v1=<hex>`` where
    ``v1`` is HMAC-SHA256 with key ``secret`` over ``f"{t}.{payload}"`` (Stripe's scheme)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's form encoding back to nested values: ``items[0][price]=p`` ->
    ``{"items": [{"price": "p"}]}`` (numeric keys become list positions)."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node: dict[str, Any] = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


@dataclass
class JournalEntry:
    """One request as the server saw it; ``at_ns`` is ``time.monotonic_ns()`` on arrival."""

    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    at_ns: int
    status: int = 0
    replayed: bool = False
    failure: str | None = None


@dataclass
class _Failure:
    method: str
    path_prefix: str
    mode: FailureMode
    times: int
    seconds: float = 0.0
    status: int = 500


class StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"error": {"type": type_, "message": message, **extra}}


def _missing(kind: str, ident: str, param: str | None = None) -> StripeError:
    extra = {"param": param} if param else {}
    return StripeError(
        404 if param is None else 400,
        "invalid_request_error",
        f"No such {kind}: '{ident}'",
        code="resource_missing",
        **extra,
    )


@dataclass
class StripeServer:
    """The server's state and its aiohttp application; :meth:`start` serves it on loopback."""

    api_key: str = "sk_test_lifecycle"
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    subscription_schedules: dict[str, dict[str, Any]] = field(default_factory=dict)
    journal: list[JournalEntry] = field(default_factory=list)
    price_changes: list[dict[str, Any]] = field(default_factory=list)
    prorations: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    #: Seconds added to the wall clock, like a Stripe test clock: set it to a time-skipping
    #: Temporal server's offset so that periods end in the workflows' time.
    clock_offset: float = 0.0
    #: Requests held by a ``slow`` failure right now.
    in_flight: int = 0
    #: Mutating requests per second answered before a 429 (None: no limit).
    rate_limit: float | None = None
    #: Requests answered 429 by :attr:`rate_limit`.
    rate_limited: int = 0
    _bucket: tuple[float, float] | None = None  # (tokens, monotonic time)
    _clock: Callable[[], Awaitable[datetime]] | None = None
    _failures: list[_Failure] = field(default_factory=list)
    _idempotency: dict[str, tuple[str, int, dict[str, Any]]] = field(default_factory=dict)
    _counter: int = 0
    _runner: web.AppRunner | None = None

    # -- control from the tests ------------------------------------------------------------

    def add_price(self, price_id: str, unit_amount: int) -> None:
        """Seed a monthly recurring price of ``unit_amount`` cents (USD)."""
        self.prices[price_id] = {
            "id": price_id,
            "object": "price",
            "active": True,
            "currency": "usd",
            "unit_amount": unit_amount,
            "recurring": {"interval": "month", "interval_count": 1},
            "type": "recurring",
        }

    def fail(
        self,
        method: str,
        path_prefix: str,
        mode: FailureMode,
        times: int = 1,
        seconds: float = 3.0,
        status: int = 500,
    ) -> None:
        """Make the next ``times`` requests ``method path_prefix*`` fail with ``mode``
        (``slow``: held ``seconds`` before executing; ``http_error``: answered ``status``)."""
        self._failures.append(_Failure(method.upper(), path_prefix, mode, times, seconds, status))

    def now(self) -> int:
        """The server's current time, unix seconds."""
        return int(time.time() + self.clock_offset)

    def follow(self, clock: Callable[[], Awaitable[datetime]] | None) -> None:
        """Set the test clock from ``clock`` (e.g. ``env.get_current_time`` of a time-skipping
        Temporal server) before every request; None stops following."""
        self._clock = clock

    async def tick(self) -> None:
        """Read the followed clock (if any) and apply what time has done (schedules)."""
        if self._clock is not None:
            now = await self._clock()
            self.clock_offset = (now - datetime.now(UTC)).total_seconds()
        self._advance()

    def subscribe(self, price_id: str, status: str = "active") -> str:
        """Seed a customer with a subscription to ``price_id`` in ``status``; returns its id
        (as if created in the Stripe dashboard: no journal entry)."""
        customer = self._create_customer({"name": "seeded"})
        sub = self._create_subscription(
            {"customer": customer["id"], "items": [{"price": price_id}]}
        )
        sub["status"] = status
        return str(sub["id"])

    def add_invoice(self, invoice_id: str, subscription_id: str, status: str = "open") -> None:
        """Seed an invoice of ``subscription_id`` (``open``, ``paid``, ...)."""
        self.invoices[invoice_id] = {
            "id": invoice_id,
            "object": "invoice",
            "status": status,
            "subscription": subscription_id,
        }

    def add_payment_method(self, customer_id: str) -> None:
        """Put a card on file as the customer's default payment method (as the customer
        would in Checkout; no journal entry)."""
        self.customers[customer_id]["invoice_settings"]["default_payment_method"] = "pm_card"

    def mutations(self) -> list[JournalEntry]:
        """Journal entries of mutating requests (POST and DELETE)."""
        return [e for e in self.journal if e.method in ("POST", "DELETE")]

    def item_price(self, subscription_id: str) -> str:
        """The price id of the subscription's (first) item."""
        return self.subscriptions[subscription_id]["items"]["data"][0]["price"]["id"]

    async def start(self) -> str:
        """Serve on a free 127.0.0.1 port; returns the base URL (``http://127.0.0.1:<port>``)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        pairs = list(request.query.items())
        if request.method == "POST":
            pairs += list((await request.post()).items())  # type: ignore[arg-type]
        params = decode_form([(k, str(v)) for k, v in pairs])
        key = request.headers.get("Idempotency-Key")
        entry = JournalEntry(request.method, request.path, params, key, time.monotonic_ns())
        self.journal.append(entry)
        await self.tick()
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._answer(entry, 401, {"error": {"type": "invalid_request_error"}})
        if request.method != "GET" and (wait := self._over_rate_limit()):
            self.rate_limited += 1
            body = {"error": {"type": "rate_limit_error", "message": "Too many requests."}}
            return self._answer(entry, 429, body, {"Retry-After": str(math.ceil(wait))})
        failure, hold, status_code = self._take_failure(request.method, request.path)
        entry.failure = failure
        if failure == "http_error":
            kind = {401: "invalid_request_error", 402: "card_error", 429: "rate_limit_error"}
            error_type = "api_error" if status_code >= 500 else "invalid_request_error"
            body = {"error": {"type": kind.get(status_code, error_type), "message": "forced"}}
            return self._answer(entry, status_code, body)
        if failure == "slow":
            self.in_flight += 1
            try:
                await asyncio.sleep(hold)
            finally:
                self.in_flight -= 1
        if failure == "server_error":
            return self._answer(entry, 500, {"error": {"type": "api_error", "message": "boom"}})
        fingerprint = json.dumps([request.method, request.path, params], sort_keys=True)
        if key and request.method != "GET" and key in self._idempotency:
            stored_fp, status, body = self._idempotency[key]
            if stored_fp != fingerprint:
                return self._answer(
                    entry,
                    400,
                    {
                        "error": {
                            "type": "idempotency_error",
                            "message": "Keys for idempotent requests can only be used with the "
                            "same parameters they were first used with.",
                        }
                    },
                )
            entry.replayed = True
            return self._answer(entry, status, body, {"Idempotent-Replayed": "true"})
        if failure == "card_declined":
            error = StripeError(
                402,
                "card_error",
                "Your card was declined.",
                code="card_declined",
                decline_code="generic_decline",
            )
            status, body = error.status, error.body
        else:
            try:
                status, body = 200, self._route(request.method, request.path, params)
            except StripeError as exc:
                status, body = exc.status, exc.body
        if key and request.method != "GET":
            self._idempotency[key] = (fingerprint, status, body)
        if failure == "timeout_after_commit":
            entry.status = status
            assert request.transport is not None
            request.transport.abort()  # committed, but the client never hears about it
            return web.Response()
        return self._answer(entry, status, body)

    @staticmethod
    def _answer(
        entry: JournalEntry,
        status: int,
        body: dict[str, Any],
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        entry.status = status
        return web.json_response(body, status=status, headers=headers)

    def _over_rate_limit(self) -> float:
        """Take a token of :attr:`rate_limit`; 0.0 when there was one, else the seconds until
        the next."""
        if self.rate_limit is None:
            return 0.0
        now = time.monotonic()
        tokens, at = self._bucket or (self.rate_limit, now)
        tokens = min(self.rate_limit, tokens + (now - at) * self.rate_limit)
        if tokens < 1:
            self._bucket = (tokens, now)
            return (1 - tokens) / self.rate_limit
        self._bucket = (tokens - 1, now)
        return 0.0

    def _take_failure(self, method: str, path: str) -> tuple[str | None, float, int]:
        for failure in self._failures:
            if (
                failure.times > 0
                and failure.method == method
                and path.startswith(failure.path_prefix)
            ):
                failure.times -= 1
                return failure.mode, failure.seconds, failure.status
        return None, 0.0, 0

    def _route(self, method: str, path: str, params: dict[str, Any]) -> dict[str, Any]:
        parts = path.strip("/").split("/")
        match method, parts:
            case "POST", ["v1", "customers"]:
                return self._create_customer(params)
            case "GET", ["v1", "customers", ident]:
                if ident not in self.customers:
                    raise _missing("customer", ident)
                return self.customers[ident]
            case "DELETE", ["v1", "customers", ident]:
                if self.customers.pop(ident, None) is None:
                    raise _missing("customer", ident)
                return {"id": ident, "object": "customer", "deleted": True}
            case "POST", ["v1", "subscriptions"]:
                return self._create_subscription(params)
            case "GET", ["v1", "subscriptions", ident]:
                return self._subscription(ident)
            case "POST", ["v1", "subscriptions", ident]:
                return self._update_subscription(ident, params)
            case "DELETE", ["v1", "subscriptions", ident]:
                sub = self._subscription(ident)
                sub.update(status="canceled", canceled_at=self.now())
                return sub
            case "GET", ["v1", "invoices"]:
                found = [
                    i
                    for i in self.invoices.values()
                    if i["subscription"] == params.get("subscription", i["subscription"])
                    and i["status"] == params.get("status", i["status"])
                ]
                limit = int(params.get("limit", 10))
                return {
                    "object": "list",
                    "data": found[:limit],
                    "has_more": len(found) > limit,
                    "url": "/v1/invoices",
                }
            case "POST", ["v1", "invoices", "create_preview"]:
                return self._preview_invoice(params)
            case "POST", ["v1", "subscription_items", ident]:
                return self._update_item(ident, params)
            case "POST", ["v1", "subscription_schedules"]:
                return self._create_schedule(params)
            case "GET", ["v1", "subscription_schedules", ident]:
                return self._schedule(ident)
            case "POST", ["v1", "subscription_schedules", ident]:
                return self._update_schedule(ident, params)
            case "POST", ["v1", "subscription_schedules", ident, "release"]:
                return self._release_schedule(ident)
        raise StripeError(404, "invalid_request_error", f"Unrecognized request URL ({path})")

    # -- resources -------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}_test{self._counter:06d}"

    def _create_customer(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = {
            "id": self._id("cus"),
            "object": "customer",
            "name": params.get("name"),
            "email": params.get("email"),
            "metadata": params.get("metadata", {}),
            "created": self.now(),
            "invoice_settings": {"default_payment_method": None},
        }
        self.customers[customer["id"]] = customer
        return customer

    def _price(self, price_id: str) -> dict[str, Any]:
        if price_id not in self.prices:
            raise _missing("price", price_id, param="price")
        return self.prices[price_id]

    def _create_subscription(self, params: dict[str, Any]) -> dict[str, Any]:
        customer = params.get("customer", "")
        if customer not in self.customers:
            raise _missing("customer", customer, param="customer")
        items = params.get("items") or []
        if len(items) != 1:
            raise StripeError(400, "invalid_request_error", "exactly one item is supported")
        price = self._price(items[0].get("price", ""))
        now = self.now()
        sub_id = self._id("sub")
        item = {
            "id": self._id("si"),
            "object": "subscription_item",
            "price": price,
            "quantity": 1,
            "subscription": sub_id,
            "current_period_start": now,
            "current_period_end": now + PERIOD_SECONDS,
        }
        sub = {
            "id": sub_id,
            "object": "subscription",
            "customer": customer,
            "schedule": None,
            "status": "active",
            "metadata": params.get("metadata", {}),
            "start_date": now,
            "billing_cycle_anchor": now + PERIOD_SECONDS,
            "cancel_at_period_end": False,
            "pause_collection": None,
            "default_payment_method": None,
            "trial_end": int(params["trial_end"]) if params.get("trial_end") else None,
            "items": {
                "object": "list",
                "data": [item],
                "has_more": False,
                "url": f"/v1/subscription_items?subscription={sub_id}",
            },
        }
        if sub["trial_end"]:
            sub["status"] = "trialing"
        self.subscriptions[sub_id] = sub
        return sub

    def _subscription(self, ident: str) -> dict[str, Any]:
        if ident not in self.subscriptions:
            raise _missing("subscription", ident)
        return self.subscriptions[ident]

    def _update_subscription(self, ident: str, params: dict[str, Any]) -> dict[str, Any]:
        sub = self._subscription(ident)
        if "pause_collection" in params:
            pause = params["pause_collection"]
            if pause == "":
                sub["pause_collection"] = None
            elif not isinstance(pause, dict) or pause.get("behavior") not in PAUSE_BEHAVIORS:
                raise StripeError(
                    400,
                    "invalid_request_error",
                    "pause_collection[behavior] must be one of " + ", ".join(PAUSE_BEHAVIORS),
                    param="pause_collection[behavior]",
                )
            else:
                resumes = pause.get("resumes_at")
                sub["pause_collection"] = {
                    "behavior": pause["behavior"],
                    "resumes_at": int(resumes) if resumes else None,
                }
        return sub

    def _update_item(self, ident: str, params: dict[str, Any]) -> dict[str, Any]:
        item = next(
            (
                i
                for s in self.subscriptions.values()
                for i in s["items"]["data"]
                if i["id"] == ident
            ),
            None,
        )
        if item is None:
            raise _missing("subscription_item", ident)
        behavior = params.get("proration_behavior", "create_prorations")
        if behavior not in PRORATION_BEHAVIORS:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Invalid proration_behavior: must be one of {sorted(PRORATION_BEHAVIORS)}",
                param="proration_behavior",
            )
        if "price" in params:
            new, old = self._price(params["price"]), item["price"]
            if new["id"] != old["id"]:
                self._change_price(item, old, new, behavior)
        return item

    def _change_price(
        self,
        item: dict[str, Any],
        old: dict[str, Any],
        new: dict[str, Any],
        behavior: str,
        source: str = "api",
    ) -> None:
        now = self.now()
        self.price_changes.append(
            {
                "subscription": item["subscription"],
                "item": item["id"],
                "from": old["id"],
                "to": new["id"],
                "proration_behavior": behavior,
                "at": now,
                "source": source,
            }
        )
        if behavior != "none":
            remaining = max(item["current_period_end"] - now, 0) / PERIOD_SECONDS
            delta = (new["unit_amount"] - old["unit_amount"]) * remaining
            self.prorations.append(
                {"subscription": item["subscription"], "amount": round(delta), "to": new["id"]}
            )
        item["price"] = new

    def _preview_invoice(self, params: dict[str, Any]) -> dict[str, Any]:
        """The invoice a price change would bring, as Stripe computes it: with proration, a
        credit for the old price's unused time and a charge for the new price's, each
        ``unit_amount * (period_end - proration_date) / (period_end - period_start)`` rounded
        to the cent, then the next period at the new price. Changes nothing."""
        sub = self._subscription(str(params.get("subscription", "")))
        details = params.get("subscription_details") or {}
        (change,) = details.get("items") or [{}]
        item = sub["items"]["data"][0]
        if change.get("id", item["id"]) != item["id"]:
            raise _missing("subscription_item", change["id"], "subscription_details[items]")
        old = item["price"]
        new = self._price(change["price"]) if "price" in change else old
        behavior = details.get("proration_behavior", "create_prorations")
        start, end = item["current_period_start"], item["current_period_end"]
        at = int(details.get("proration_date", self.now()))
        fraction = min(max(end - at, 0), end - start) / (end - start)
        lines = []
        if behavior != "none" and new["id"] != old["id"]:
            for price, sign, what in ((old, -1, "Unused time on"), (new, 1, "Remaining time on")):
                lines.append(
                    {
                        "object": "line_item",
                        "amount": sign * round(price["unit_amount"] * fraction),
                        "currency": "usd",
                        "description": f"{what} {price['id']}",
                        "period": {"start": at, "end": end},
                        "parent": {"subscription_item_details": {"proration": True}},
                        "pricing": {"price_details": {"price": price["id"]}},
                    }
                )
        lines.append(
            {
                "object": "line_item",
                "amount": new["unit_amount"],
                "currency": "usd",
                "description": f"1 x {new['id']} (next period)",
                "period": {"start": end, "end": end + PERIOD_SECONDS},
                "parent": {"subscription_item_details": {"proration": False}},
                "pricing": {"price_details": {"price": new["id"]}},
            }
        )
        total = sum(line["amount"] for line in lines)
        return {
            "object": "invoice",
            "customer": sub["customer"],
            "subscription": sub["id"],
            "currency": "usd",
            "lines": {"object": "list", "data": lines, "has_more": False},
            "subtotal": total,
            "total": total,
            "amount_due": max(total, 0),
            "period_start": start,
            "period_end": end,
        }

    # -- subscription schedules ------------------------------------------------------------

    def _schedule(self, ident: str) -> dict[str, Any]:
        if ident not in self.subscription_schedules:
            raise _missing("subscription_schedule", ident)
        return self.subscription_schedules[ident]

    def _create_schedule(self, params: dict[str, Any]) -> dict[str, Any]:
        """A schedule taking over ``from_subscription``: one phase, its current price until its
        current period's end, ``end_behavior=release``."""
        sub_id = params.get("from_subscription", "")
        if sub_id not in self.subscriptions:
            raise _missing("subscription", sub_id, param="from_subscription")
        sub = self.subscriptions[sub_id]
        if sub.get("schedule"):
            raise StripeError(
                400,
                "invalid_request_error",
                f"You cannot migrate a subscription that is already attached to a schedule: "
                f"`{sub['schedule']}`.",
                param="from_subscription",
            )
        if sub["status"] not in ("active", "trialing", "past_due"):
            raise StripeError(
                400, "invalid_request_error", f"subscription '{sub_id}' is {sub['status']}"
            )
        item = sub["items"]["data"][0]
        phase = {
            "start_date": item["current_period_start"],
            "end_date": item["current_period_end"],
            "items": [{"price": item["price"]["id"], "quantity": 1}],
        }
        schedule = {
            "id": self._id("sub_sched"),
            "object": "subscription_schedule",
            "subscription": sub_id,
            "customer": sub["customer"],
            "status": "active",
            "end_behavior": "release",
            "phases": [phase],
            "current_phase": {"start_date": phase["start_date"], "end_date": phase["end_date"]},
            "released_at": None,
            "released_subscription": None,
            "created": self.now(),
        }
        self.subscription_schedules[schedule["id"]] = schedule
        sub["schedule"] = schedule["id"]
        return schedule

    def _update_schedule(self, ident: str, params: dict[str, Any]) -> dict[str, Any]:
        """Replace the phases: the first must start when the current phase started; a phase
        ends at its ``end_date`` or after ``iterations`` periods, the next starts there."""
        schedule = self._schedule(ident)
        if schedule["status"] != "active":
            raise StripeError(
                400,
                "invalid_request_error",
                f"You cannot update a subscription schedule that is currently in the "
                f"`{schedule['status']}` status.",
            )
        given = params.get("phases") or []
        if not given:
            raise StripeError(400, "invalid_request_error", "phases is required", param="phases")
        start = schedule["current_phase"]["start_date"]
        if int(given[0].get("start_date", start)) != start:
            raise StripeError(
                400,
                "invalid_request_error",
                "The first phase must start when the current phase started.",
                param="phases[0][start_date]",
            )
        phases = []
        for i, phase in enumerate(given):
            price = self._price((phase.get("items") or [{}])[0].get("price", ""))["id"]
            if "end_date" in phase:
                end = int(phase["end_date"])
            elif "iterations" in phase:
                end = start + int(phase["iterations"]) * PERIOD_SECONDS
            else:
                raise StripeError(
                    400,
                    "invalid_request_error",
                    "every phase needs end_date or iterations",
                    param=f"phases[{i}][end_date]",
                )
            phases.append(
                {"start_date": start, "end_date": end, "items": [{"price": price, "quantity": 1}]}
            )
            start = end
        schedule["phases"] = phases
        schedule["end_behavior"] = params.get("end_behavior", schedule["end_behavior"])
        return schedule

    def _release_schedule(self, ident: str) -> dict[str, Any]:
        """Detach the schedule; the subscription keeps its current price and period."""
        schedule = self._schedule(ident)
        if schedule["status"] not in ("active", "not_started"):
            raise StripeError(
                400,
                "invalid_request_error",
                f"You cannot release a subscription schedule that is currently in the "
                f"`{schedule['status']}` status.",
            )
        self._detach(schedule)
        return schedule

    def _detach(self, schedule: dict[str, Any]) -> None:
        sub = self.subscriptions[schedule["subscription"]]
        schedule.update(
            status="released",
            released_at=self.now(),
            released_subscription=sub["id"],
            current_phase=None,
        )
        sub["schedule"] = None

    def _advance(self) -> None:
        """Apply every phase change due by :meth:`now`: the next phase's price on the item
        (no proration: the new period is invoiced at it) and its period; after the last
        phase, release (``end_behavior=release``). Then renew every active subscription
        without a schedule whose period ended (the next 30 days)."""
        now = self.now()
        for schedule in self.subscription_schedules.values():
            if schedule["status"] != "active":
                continue
            sub = self.subscriptions[schedule["subscription"]]
            item = sub["items"]["data"][0]
            started = [p for p in schedule["phases"] if p["start_date"] <= now]
            phase = started[-1] if started else None
            current = schedule["current_phase"]
            if phase is not None and current["start_date"] != phase["start_date"]:
                new = self._price(phase["items"][0]["price"])
                if new["id"] != item["price"]["id"]:
                    self._change_price(item, item["price"], new, "none", source="schedule")
                item["current_period_start"] = phase["start_date"]
                item["current_period_end"] = phase["start_date"] + PERIOD_SECONDS
                schedule["current_phase"] = {
                    "start_date": phase["start_date"],
                    "end_date": phase["end_date"],
                }
            last_end = schedule["phases"][-1]["end_date"]
            if now >= last_end and schedule["end_behavior"] == "release":
                self._detach(schedule)
        for sub in self.subscriptions.values():  # renewals: one period after the other
            if sub["status"] == "trialing" and sub["trial_end"] <= now:
                sub["status"] = "active"
            pause = sub.get("pause_collection")
            if pause and pause["resumes_at"] and pause["resumes_at"] <= now:
                sub["pause_collection"] = None  # Stripe lifts a pause at its resumes_at
            item = sub["items"]["data"][0]
            while (
                sub["status"] == "active"
                and not sub["schedule"]
                and (item["current_period_end"] <= now)
            ):
                item["current_period_start"] = item["current_period_end"]
                item["current_period_end"] += PERIOD_SECONDS
