"""``tenantctl tenants suspend|pause|resume``: suspend, pause or resume a tenant through the
API."""

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


@app.command("pause")
def tenants_pause(
    tenant_id: str,
    reason: Annotated[str, typer.Option(help="Why (kept on the tenant and in the audit log)")],
    resume_at: Annotated[
        str | None, typer.Option(help="When to resume, ISO 8601 with a zone (default: never)")
    ] = None,
    wait: Wait = False,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Pause an active tenant (suspended, billing collection paused) until --resume-at.

    With --wait: until the tenant is paused (the pause itself lasts until it resumes)."""
    body = {"reason": reason, "resume_at": resume_at}
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/pause", json=body))
        until = f" until {resume_at}" if resume_at else " until resumed"
        console.print(f"pause started{until}: workflow [bold]{out['workflow_id']}[/bold]")
        if wait:
            wait_operation(http, out["workflow_id"], timeout, settled=_paused)


def _paused(progress: dict[str, object]) -> bool:
    return progress.get("step") == "paused"


@app.command("resume")
def tenants_resume(
    tenant_id: str, wait: Wait = False, timeout: Timeout = 3600, api_url: ApiUrl = None
) -> None:
    """Resume a paused tenant now (billing resumed, entitlements back)."""
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/resume"))
        console.print(f"resuming: workflow [bold]{out['workflow_id']}[/bold]")
        if wait:
            wait_operation(http, out["workflow_id"], timeout)
