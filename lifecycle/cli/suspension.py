"""``tenantctl tenants suspend``: suspend a tenant through the API."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle.cli.common import ApiUrl, api_client, checked, console
from lifecycle.cli.waiting import Timeout, Wait, wait_operation

app = typer.Typer()


@app.command("suspend")
def tenants_suspend(
    tenant_id: str,
    reason: Annotated[str, typer.Option(help="Why (kept on the tenant and in the audit log)")],
    wait: Wait = False,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Suspend an active tenant (access revoked, subscription kept)."""
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/suspend", json={"reason": reason}))
        console.print(f"suspension started: workflow [bold]{out['workflow_id']}[/bold]")
        if wait:
            wait_operation(http, out["workflow_id"], timeout)
