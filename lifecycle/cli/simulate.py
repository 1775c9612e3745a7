"""``tenantctl simulate SCENARIO``: the policy simulator's day-by-day timeline."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer
from rich.table import Table

from lifecycle.cli.common import console
from lifecycle.dev.simulate import SCENARIOS, simulate

app = typer.Typer()

COLOURS = {
    "purged": "red",
    "suspended": "red",
    "failed": "red",
    "certificate-verified": "green",
    "delivered": "green",
}


@app.command("simulate")
def simulate_command(
    scenario: Annotated[str, typer.Argument(help=f"One of: {', '.join(SCENARIOS)}")],
    tenant: Annotated[
        str | None, typer.Option(help="Sample company's tenant id (default: the first)")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=400, help="Simulated days at most")] = 45,
    retention_days: Annotated[
        int,
        typer.Option(min=30, max=90, help="Soft-delete and export retention, in days"),
    ] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="Print the timeline as JSON")] = False,
) -> None:
    """Run SCENARIO with the real workflows and activities on Temporal's time-skipping test
    server, in a scratch control plane and sample application (never the live ones), with
    billing in limited mode; print the day-by-day timeline. Exit 2 on an unknown scenario."""
    if scenario not in SCENARIOS:
        console.print(
            f"[red]unknown scenario '{scenario}'[/red]; choose one of {', '.join(SCENARIOS)}"
        )
        raise typer.Exit(2)
    try:
        timeline = asyncio.run(simulate(scenario, tenant, days, retention_days))
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(timeline.as_dict(), indent=2))
        return
    table = Table(title=f"simulate {scenario}: tenant {timeline.tenant}")
    for column in ("day", "event", "detail"):
        table.add_column(column, overflow="fold")
    for e in timeline.events:
        colour = COLOURS.get(e.event)
        event = f"[{colour}]{e.event}[/{colour}]" if colour else e.event
        table.add_row(str(e.day), event, e.detail)
    console.print(table)
