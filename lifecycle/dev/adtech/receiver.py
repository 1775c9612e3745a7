"""The sample application's receiver of lifecycle events: the application enforces suspension.

``tenant.suspended`` makes the company read-only, ``tenant.reactivated`` gives it full access
again, ``tenant.purged`` forgets it. The entitlements an event carries (``data.entitlements``)
decide too: ``read_only = 1`` (a dunning ``read_only`` step) makes it read-only, and a
reactivation, plan change or entitlement change without it gives full access. The state is
kept in the application's own table ``company_access`` keyed by the tenant's data key (the
company id as a string), with the sequence number of the last event applied: a repeated or
older event changes nothing, so redeliveries and out-of-order retries are harmless.

Each request is verified as the control plane signs it (``activities/events.py``):
``X-Lifecycle-Signature: sha256=<hex HMAC-SHA256(secret, body)>``, compared in constant time,
and ``X-Lifecycle-Timestamp`` (also ``sent_at`` in the body) at most
:data:`TOLERANCE_SECONDS` from now. Serve it with
``uvicorn --factory lifecycle.dev.adtech.receiver:from_env`` (APP_DATABASE_URL,
EVENT_WEBHOOK_SECRET) and list its URL in EVENT_WEBHOOK_URLS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Boolean, Column, Integer, MetaData, Table, Text, select
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from lifecycle.dev.adtech.schema import Timestamp
from lifecycle.persistence.engine import create_engine

#: A request whose timestamp is further than this from now is refused (replay protection).
TOLERANCE_SECONDS = 300
#: Events of an ACTIVE tenant whose ``data.entitlements`` say whether it is read-only (dunning).
ENTITLEMENT_EVENTS = frozenset(
    {"tenant.activated", "tenant.reactivated", "tenant.plan_changed", "tenant.entitlements_changed"}
)

access_metadata = MetaData()
#: The application's enforcement state per company (not tenant data the data map exports:
#: the data key and a flag; the row goes with ``tenant.purged``).
company_access = Table(
    "company_access",
    access_metadata,
    Column("data_key", Text, primary_key=True),
    Column("tenant_id", Text, nullable=False),
    Column("read_only", Boolean, nullable=False),
    Column("reason", Text),
    Column("last_sequence", Integer, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)


def verify(body: bytes, signature: str, timestamp: str, secret: str, now: float) -> str | None:
    """Why the request is refused, or None when its signature and timestamp hold."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return "bad signature"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "bad timestamp"
    if abs(now - sent_at) > TOLERANCE_SECONDS:
        return "stale timestamp"
    return None


async def refusal(request: Request, secret: str) -> tuple[bytes, str | None]:
    """The request's body and why it is refused (:func:`verify` over its signature and
    timestamp headers, now), or None when it holds."""
    body = await request.body()
    refused = verify(
        body,
        request.headers.get("X-Lifecycle-Signature", ""),
        request.headers.get("X-Lifecycle-Timestamp", ""),
        secret,
        time.time(),
    )
    return body, refused


async def is_read_only(engine: AsyncEngine, data_key: str) -> bool:
    """Whether the application serves company ``data_key`` read-only."""
    async with engine.connect() as conn:
        value = await conn.scalar(
            select(company_access.c.read_only).where(company_access.c.data_key == data_key)
        )
    return bool(value)


async def apply_event(engine: AsyncEngine, event: dict[str, Any]) -> str:
    """Apply a verified event to ``company_access``; returns what was done."""
    data = event.get("data") or {}
    key, sequence = data.get("data_key"), int(event["sequence"])
    if not key:
        return "ignored: no data key"
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                select(company_access).where(company_access.c.data_key == key).with_for_update()
            )
        ).first()
        if row is not None and row.last_sequence >= sequence:
            return "ignored: already applied"
        if event["type"] == "tenant.purged":
            await conn.execute(company_access.delete().where(company_access.c.data_key == key))
            return "forgotten"
        read_only = row.read_only if row is not None else False
        entitlements = data.get("entitlements")
        if event["type"] == "tenant.suspended":
            read_only = True
        elif event["type"] == "tenant.reactivated":
            read_only = False
        if isinstance(entitlements, dict) and event["type"] in ENTITLEMENT_EVENTS:
            read_only = entitlements.get("read_only") == 1
        values = {
            "tenant_id": event["tenant_id"],
            "read_only": read_only,
            "reason": (data.get("detail") or {}).get("reason"),
            "last_sequence": sequence,
            "updated_at": datetime.now(UTC),
        }
        if row is None:
            await conn.execute(company_access.insert().values(data_key=key, **values))
        else:
            await conn.execute(
                company_access.update().where(company_access.c.data_key == key).values(**values)
            )
    return "read-only" if read_only else "read-write"


def receiver_app(engine: AsyncEngine, secret: str) -> Starlette:
    """The receiver as an ASGI app: ``POST /lifecycle-events`` answers 200 with what was done,
    401 for a bad signature or a stale timestamp, 400 for a body that is not an event."""

    async def receive(request: Request) -> JSONResponse:
        body, refused = await refusal(request, secret)
        if refused:
            return JSONResponse({"error": refused}, status_code=401)
        try:
            event = json.loads(body)
            outcome = await apply_event(engine, event)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"not an event: {exc}"}, status_code=400)
        return JSONResponse({"outcome": outcome})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with engine.begin() as conn:
            await conn.run_sync(access_metadata.create_all)
        yield

    return Starlette(
        routes=[Route("/lifecycle-events", receive, methods=["POST"])], lifespan=lifespan
    )


def from_env() -> Starlette:
    """The receiver on APP_DATABASE_URL, verifying with EVENT_WEBHOOK_SECRET."""
    return receiver_app(
        create_engine(os.environ["APP_DATABASE_URL"]), os.environ["EVENT_WEBHOOK_SECRET"]
    )
