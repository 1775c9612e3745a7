"""``tenantctl tenants reactivate``: reactivate a tenant through the API."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle.cli.common import ApiUrl, api_client, checked, console

app = typer.Typer()


@app.command("reactivate")
def tenants_reactivate(
    tenant_id: str,
    plan: Annotated[str | None, typer.Option(help="Plan (default: the previous one)")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Reactivate a suspended tenant, or a deleted one within retention."""
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/reactivate", json={"plan": plan}))
    console.print(f"reactivation {out['status']}: workflow [bold]{out['workflow_id']}[/bold]")
