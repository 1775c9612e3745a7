"""``tenantctl tenants upgrade|downgrade|usage``: plan changes through the API."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle.cli.common import ApiUrl, api_client, checked, console
from lifecycle.cli.waiting import Timeout, Wait, wait_operation

app = typer.Typer()


@app.command("upgrade")
def tenants_upgrade(
    tenant_id: str,
    to: Annotated[str, typer.Option("--to", help="Target plan, above the current one")],
    wait: Wait = False,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Upgrade now (entitlements, then billing with proration); prints the workflow id."""
    with api_client(api_url) as http:
        started = checked(http.post(f"/tenants/{tenant_id}/upgrade", json={"to_plan": to}))
        console.print(f"upgrade started: workflow [bold]{started['workflow_id']}[/bold]")
        if wait:
            wait_operation(http, started["workflow_id"], timeout)


@app.command("downgrade")
def tenants_downgrade(
    tenant_id: str,
    to: Annotated[
        str | None, typer.Option("--to", help="Target plan, below the current one")
    ] = None,
    immediately: Annotated[
        bool, typer.Option(help="Now with a proration credit, not at the period end")
    ] = False,
    preview: Annotated[bool, typer.Option(help="Only check usage against the target")] = False,
    cancel: Annotated[bool, typer.Option(help="Cancel the pending downgrade")] = False,
    wait: Wait = False,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Downgrade at the billing period's end (default) or immediately; --preview checks usage,
    --cancel cancels a pending downgrade.

    With --wait: a period-end downgrade ends its wait once scheduled (the date is printed),
    an immediate one once applied, a cancel once the downgrade is cancelled."""
    with api_client(api_url) as http:
        if cancel:
            done = checked(http.post(f"/tenants/{tenant_id}/downgrade/cancel"))
            console.print(f"cancel sent to workflow [bold]{done['workflow_id']}[/bold]")
            if wait:
                wait_operation(http, done["workflow_id"], timeout, undone=("compensated",))
            return
        if not to:
            console.print("[red]--to PLAN is required[/red]")
            raise typer.Exit(2)
        if preview:
            answer = checked(
                http.get(f"/tenants/{tenant_id}/downgrade-preview", params={"to_plan": to})
            )
            console.print_json(data=answer)
            return
        effective = "immediately" if immediately else "period_end"
        body = {"to_plan": to, "effective": effective}
        started = checked(http.post(f"/tenants/{tenant_id}/downgrade", json=body))
        console.print(
            f"downgrade ({effective}) started: workflow [bold]{started['workflow_id']}[/bold]"
        )
        if not wait:
            return
        view = wait_operation(
            http,
            started["workflow_id"],
            timeout,
            settled=lambda p: not immediately and p.get("effective_at") is not None,
        )
    if view["status"] == "running":
        console.print(f"scheduled: takes effect at {view['result']['progress']['effective_at']}")


@app.command("usage")
def tenants_usage(
    tenant_id: str,
    amounts: Annotated[list[str], typer.Argument(help="RESOURCE=AMOUNT, e.g. users=50")],
    api_url: ApiUrl = None,
) -> None:
    """Record current usage (e.g. users=50 storage_gb=40); shows resources over limit."""
    usage: dict[str, int] = {}
    for item in amounts:
        resource, _, amount = item.partition("=")
        if not amount.lstrip("-").isdigit():
            console.print(f"[red]expected RESOURCE=AMOUNT, got {item!r}[/red]")
            raise typer.Exit(2)
        usage[resource] = int(amount)
    with api_client(api_url) as http:
        answer = checked(http.put(f"/tenants/{tenant_id}/usage", json=usage))
    console.print_json(data=answer)
