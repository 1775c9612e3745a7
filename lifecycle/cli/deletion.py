"""``tenantctl tenants delete|purge|legal-hold``: soft deletion, purge now and legal hold
through the API."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle.cli.common import ApiUrl, api_client, checked, console
from lifecycle.cli.waiting import Timeout, Wait, wait_operation

app = typer.Typer()


@app.command("delete")
def tenants_delete(
    tenant_id: str,
    requested_by: Annotated[str, typer.Option(help="Who asks for the erasure")],
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    retention_days: Annotated[int | None, typer.Option(help="30..90 days")] = None,
    wait: Wait = False,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Soft-delete a tenant; its data is purged after the retention period. With --wait:
    until the tenant is DELETED and its retention runs (not until the purge)."""
    body = {"requested_by": requested_by, "reason": reason, "retention_days": retention_days}
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/delete", json=body))
        console.print(
            f"deleted: workflow [bold]{out['workflow_id']}[/bold], purge scheduled at "
            f"{out['hard_delete_scheduled_at']} ({out['retention_days']} days)"
        )
        if wait:
            wait_operation(
                http, out["workflow_id"], timeout, settled=lambda p: p.get("phase") == "retained"
            )


@app.command("purge")
def tenants_purge(
    tenant_id: str,
    confirm: Annotated[str, typer.Option(help="The tenant id again, to confirm")],
    reason: Annotated[str, typer.Option(help="The written request for immediate erasure")],
    requested_by: Annotated[str, typer.Option(help="Who asks for the erasure")] = "cli",
    wait: Wait = False,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Purge a DELETED tenant now, waiving the rest of its retention (audited; recorded in
    the deletion certificate). Refused under a legal hold or once the purge ran. With
    --wait: until the purge is verified and the certificate kept."""
    body = {"requested_by": requested_by, "reason": reason, "confirm": confirm}
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/purge", json=body))
        waived = out["retention_waived"]
        console.print(
            f"purging {tenant_id}: retention (until {out['purge_scheduled_at']}) waived at "
            f"{waived['at']} by {waived['by']}; workflow [bold]{out['workflow_id']}[/bold]"
        )
        if wait:
            wait_operation(
                http, out["workflow_id"], timeout, settled=lambda p: p.get("phase") == "purged"
            )


@app.command("legal-hold")
def tenants_legal_hold(
    tenant_id: str,
    release: Annotated[bool, typer.Option("--release", help="Release the hold")] = False,
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Place (or --release) a legal hold: no purge while it stands."""
    path = f"/tenants/{tenant_id}/legal-hold"
    with api_client(api_url) as http:
        response = http.delete(path) if release else http.post(path, json={"reason": reason})
        checked(response)
    console.print(f"legal hold {'released' if release else 'placed'} on {tenant_id}")
