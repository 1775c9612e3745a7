"""``tenantctl tenants list|show`` and ``tenantctl status``: reading tenants through the API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from lifecycle.cli.common import ApiUrl, api_client, checked, console

app = typer.Typer(help="Tenants, through the API.", no_args_is_help=True)
status_app = typer.Typer()


@app.command("list")
def tenants_list(
    state: Annotated[str | None, typer.Option(help="Filter by state")] = None,
    plan: Annotated[str | None, typer.Option(help="Filter by plan")] = None,
    api_url: ApiUrl = None,
) -> None:
    """List tenants."""
    filters = {"state": state.upper() if state else None, "plan": plan, "limit": 500}
    params = {k: v for k, v in filters.items() if v}
    with api_client(api_url) as http:
        page = checked(http.get("/tenants", params=params))
    table = Table("tenant", "name", "plan", "state", "updated")
    for t in page["items"]:
        table.add_row(t["tenant_id"], t["name"] or "", t["plan"], t["state"], t["updated_at"])
    console.print(table)
    console.print(f"{page['total']} tenant(s)")


def dunning_line(tenant: dict[str, Any]) -> str | None:
    """One line saying where a tenant stands on its dunning ladder (None when nothing is
    overdue), e.g. ``dunning: read_only since <UTC>; next: suspend at <UTC>``."""
    dunning = tenant.get("dunning")
    if not dunning:
        return None
    now = f"dunning: {dunning['step'] or 'past due'} since {dunning['since']}"
    if dunning.get("next_step"):
        return f"{now}; next: {dunning['next_step']} at {dunning['next_step_at']}"
    return f"{now}; no step left"


@app.command("show")
def tenants_show(tenant_id: str, api_url: ApiUrl = None) -> None:
    """Show one tenant and its audit log."""
    with api_client(api_url) as http:
        tenant = checked(http.get(f"/tenants/{tenant_id}"))
        events = checked(http.get(f"/tenants/{tenant_id}/events"))
    console.print_json(data=tenant)
    if line := dunning_line(tenant):
        console.print(line)
    table = Table("at", "operation", "from", "to", "actor", "workflow", "detail")
    table.columns[-1].overflow = "fold"  # the audit detail is wrapped, never cut
    for e in events:
        table.add_row(
            e["at"],
            e["operation"],
            e["from_state"] or "",
            e["to_state"] or "",
            e["actor"],
            e["workflow_id"] or "",
            json.dumps(e.get("detail") or {}, sort_keys=True) if e.get("detail") else "",
        )
    console.print(table)


@status_app.command()
def status(api_url: ApiUrl = None) -> None:
    """Tenants per state, running operations and purges due in the next 7 days."""
    with api_client(api_url) as http:
        data = checked(http.get("/status"))
    states = Table("state", "tenants", title="Tenants")
    for state, n in sorted(data["tenants_by_state"].items()):
        states.add_row(state, str(n))
    running = Table("operation", "running", title="Running operations")
    for kind, n in data["running_operations"].items():
        running.add_row(kind, str(n))
    due = Table("tenant", "purge scheduled at (UTC)", title="Purges due in the next 7 days")
    for item in data["purges_due_7d"]:
        due.add_row(item["tenant_id"], item["purge_scheduled_at"])
    for table in (states, running, due):
        console.print(table)
