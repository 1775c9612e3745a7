"""``tenantctl reconcile [--fix]``: compare billing with Stripe through the API."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle.cli.common import ApiUrl, api_client, checked, console

app = typer.Typer()


@app.command("reconcile")
def reconcile(
    fix: Annotated[
        bool, typer.Option("--fix", help="Repair the unambiguous drifts (else report only)")
    ] = False,
    latest: Annotated[
        bool, typer.Option("--latest", help="Show the latest report instead of running one")
    ] = False,
    api_url: ApiUrl = None,
) -> None:
    """Run a billing reconciliation and print every drift; exits 1 when a drift is left."""
    with api_client(api_url) as http:
        if latest:
            report = checked(http.get("/reconciliation"))
        else:
            report = checked(http.post("/reconciliation", params={"fix": fix}, timeout=600))
    drifts = report["drifts"]
    console.print(
        f"{report['workflow_id']}: {report['tenants_checked']} tenants, {len(drifts)} drift(s)"
    )
    for d in drifts:
        done = f"fixed: {d['fix']}" if d["fix"] else "reported"
        console.print(f"  {d['tenant_id']}: {d['kind']} ({done})")
    if any(d["fix"] is None for d in drifts):
        raise typer.Exit(1)
