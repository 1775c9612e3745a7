"""``tenantctl bulk migrate-plan|status|pause|resume|cancel``: bulk plan migrations through
the API."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from lifecycle.cli.common import ApiUrl, api_client, checked, console

app = typer.Typer(help="Bulk operations over many tenants.", no_args_is_help=True)
BASE = "/bulk/plan-migrations"


def show(progress: dict[str, Any]) -> None:
    """Print a migration's progress and the tenants it did not move."""
    remaining = progress["remaining"]
    console.print(
        f"{progress['migration_id']} [bold]{progress['status']}[/bold]: "
        f"{progress['from_plan']} -> {progress['to_plan']} ({progress['price_id']}); "
        f"done {progress['done']}, failed {progress['failed']}, in flight "
        f"{progress['in_flight']}, remaining {'?' if remaining is None else remaining}"
    )
    for failure in progress.get("failures", []):
        console.print(f"  {failure['tenant_id']}: {failure['cause']}: {failure['message']}")


@app.command("migrate-plan")
def migrate_plan(
    from_plan: Annotated[str, typer.Option("--from", help="Move the tenants of this plan")],
    to_plan: Annotated[str | None, typer.Option("--to", help="Target plan")] = None,
    to_price: Annotated[
        str | None, typer.Option("--to-price", help="Target price of the same plan")
    ] = None,
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Only tenant ids starting with this")
    ] = None,
    tenant: Annotated[
        list[str] | None, typer.Option("--tenant", help="Only these tenants (repeatable)")
    ] = None,
    at_period_end: Annotated[
        bool, typer.Option(help="Downgrades at each tenant's period end (default: now)")
    ] = False,
    concurrency: Annotated[int, typer.Option(help="Tenants in flight at once")] = 50,
    api_url: ApiUrl = None,
) -> None:
    """Start a bulk plan migration; prints its id (follow it with: tenantctl bulk status ID)."""
    body: dict[str, Any] = {
        "from_plan": from_plan,
        "filter": {"tenant_id_prefix": prefix, "tenant_ids": tenant or None},
        "effective": "period_end" if at_period_end else "immediately",
        "concurrency": concurrency,
    }
    body |= {"to_plan": to_plan} if to_plan else {"to_price_id": to_price}
    with api_client(api_url) as http:
        started = checked(http.post(BASE, json=body))
    console.print(
        f"plan migration [bold]{started['migration_id']}[/bold] started "
        f"({started['kind']}s {started['from_plan']} -> {started['to_plan']}, "
        f"workflow {started['workflow_id']})"
    )


@app.command("status")
def status(
    migration_id: str,
    as_json: Annotated[bool, typer.Option("--json", help="Print the JSON answer")] = False,
    api_url: ApiUrl = None,
) -> None:
    """Progress of a migration: counts and the tenants not moved, with their causes."""
    with api_client(api_url) as http:
        progress = checked(http.get(f"{BASE}/{migration_id}"))
    if as_json:
        console.print_json(json.dumps(progress))
    else:
        show(progress)


def _control(action: str, migration_id: str, api_url: str | None) -> None:
    with api_client(api_url) as http:
        show(checked(http.post(f"{BASE}/{migration_id}/{action}")))


@app.command("pause")
def pause(migration_id: str, api_url: ApiUrl = None) -> None:
    """Start no more tenants until resumed (those in flight finish)."""
    _control("pause", migration_id, api_url)


@app.command("resume")
def resume(migration_id: str, api_url: ApiUrl = None) -> None:
    """Go on after a pause."""
    _control("resume", migration_id, api_url)


@app.command("cancel")
def cancel(migration_id: str, api_url: ApiUrl = None) -> None:
    """Start no more tenants, ever; those in flight end as they would."""
    _control("cancel", migration_id, api_url)
