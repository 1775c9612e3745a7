"""``tenantctl operations show ID`` and ``tenantctl plans``: operations and the plan catalogue,
through the API."""

from __future__ import annotations

import typer
from rich.table import Table

from lifecycle.cli.common import ApiUrl, api_client, checked, console

app = typer.Typer(help="Operations (workflows), through the API.", no_args_is_help=True)
plans_app = typer.Typer()


@app.command("show")
def operations_show(workflow_id: str, api_url: ApiUrl = None) -> None:
    """Show one operation: status, step reached, timing, and its result or error."""
    with api_client(api_url) as http:
        op = checked(http.get(f"/operations/{workflow_id}"))
    table = Table(show_header=False, title=f"Operation {workflow_id}")
    table.add_column("field", style="bold")
    table.add_column("value", overflow="fold")
    for field in ("tenant_id", "kind", "status", "step", "started_at", "finished_at"):
        table.add_row(field, str(op.get(field) or ""))
    if op.get("duration_seconds") is not None:
        table.add_row("duration", f"{op['duration_seconds']:.2f} s")
    if op.get("error"):
        table.add_row("error", f"[red]{op['error']}[/red]")
    console.print(table)
    if op.get("result"):
        console.print_json(data=op["result"])


@plans_app.command("plans")
def plans(api_url: ApiUrl = None) -> None:
    """The plan hierarchy, lowest first, with its limits (-1: unlimited) and price ids."""
    with api_client(api_url) as http:
        catalogue = checked(http.get("/plans"))
    resources = sorted({r for p in catalogue for r in p["limits"]})
    table = Table("plan", *resources, "price id", "monthly", title="Plans (lowest first)")
    for column in table.columns:
        column.overflow = "fold"  # a narrow terminal wraps values, never cuts them
    for p in catalogue:
        limits = ["unlimited" if p["limits"][r] == -1 else str(p["limits"][r]) for r in resources]
        cents = p.get("monthly_price_cents")
        monthly = f"{cents / 100:.2f}" if isinstance(cents, int) else ""
        table.add_row(p["name"], *limits, p["price_id"], monthly)
    console.print(table)
