"""``tenantctl tenants create``: onboard a tenant through the API."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle.cli.common import ApiUrl, api_client, checked, console
from lifecycle.cli.waiting import Timeout, Wait, wait_operation

app = typer.Typer()


@app.command("create")
def tenants_create(
    tenant_id: str,
    name: Annotated[str, typer.Option(help="Display name")],
    email: Annotated[str, typer.Option(help="Billing e-mail")],
    plan: Annotated[str, typer.Option(help="Plan")] = "free",
    data_key: Annotated[str | None, typer.Option(help="Key of its data in the data map")] = None,
    trial_days: Annotated[int | None, typer.Option(help="Days of free trial (Stripe)")] = None,
    wait: Wait = False,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Onboard a tenant (202: prints the workflow id)."""
    body: dict[str, object] = {"tenant_id": tenant_id, "name": name, "email": email, "plan": plan}
    if data_key:
        body["data_key"] = data_key
    if trial_days is not None:
        body["trial_days"] = trial_days
    with api_client(api_url) as http:
        started = checked(http.post("/tenants", json=body))
        console.print(f"onboarding started: workflow [bold]{started['workflow_id']}[/bold]")
        if wait:
            wait_operation(http, started["workflow_id"], timeout)
