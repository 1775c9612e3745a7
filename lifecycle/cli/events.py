"""``tenantctl events deliveries|redeliver``: outbound lifecycle events through the API."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from lifecycle.cli.common import ApiUrl, api_client, checked, console

app = typer.Typer(
    help="Outbound lifecycle events (EVENT_WEBHOOK_URLS, PROVISIONING_WEBHOOK_URL) and their "
    "deliveries."
)


@app.command("deliveries")
def deliveries(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivered or failed")
    ] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    api_url: ApiUrl = None,
) -> None:
    """List event deliveries, latest event first (--status failed: those whose retries ran out)."""
    params: dict[str, str | int] = {"limit": limit}
    if status:
        params["status"] = status
    if tenant:
        params["tenant_id"] = tenant
    with api_client(api_url) as http:
        rows = checked(http.get("/events/deliveries", params=params))
    table = Table("event", "type", "tenant", "seq", "endpoint", "status", "attempts", "error")
    for d in rows:
        table.add_row(
            str(d["event_id"]),
            d["event_type"],
            d["tenant_id"],
            str(d["sequence"]),
            d["endpoint"],
            d["status"],
            str(d["attempts"]),
            d["last_error"] or "",
        )
    console.print(table)


@app.command("redeliver")
def redeliver(
    event_id: Annotated[int, typer.Argument(min=1, help="The event's id")],
    api_url: ApiUrl = None,
) -> None:
    """Deliver an event again to every endpoint that has not had it."""
    with api_client(api_url) as http:
        started = checked(http.post(f"/events/{event_id}/redeliver"))
    console.print(
        f"event {started['event_id']}: redelivery {started['workflow_id']} "
        f"({len(started['deliveries'])} delivery(ies) pending)"
    )
