"""``tenantctl tenants reactivate``: reactivate a tenant through the API."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle.cli.common import ApiUrl, api_client, checked, console
from lifecycle.cli.waiting import Timeout, Wait, wait_operation

app = typer.Typer()


@app.command("reactivate")
def tenants_reactivate(
    tenant_id: str,
    plan: Annotated[str | None, typer.Option(help="Plan (default: the previous one)")] = None,
    wait: Wait = False,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Reactivate a suspended tenant, or a deleted one within retention."""
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/reactivate", json={"plan": plan}))
        console.print(f"reactivation {out['status']}: workflow [bold]{out['workflow_id']}[/bold]")
        if wait:  # a deleted tenant's deletion workflow goes on a moment after reactivating
            wait_operation(
                http, out["workflow_id"], timeout, settled=lambda p: p.get("phase") == "reactivated"
            )
