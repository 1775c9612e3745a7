"""``tenantctl tenants upgrade|downgrade|change-plan|usage``: plan changes through the API."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

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
        bool,
        typer.Option(help="Now with a proration credit (default: the plans file's rule)"),
    ] = False,
    preview: Annotated[bool, typer.Option(help="Only check usage against the target")] = False,
    cancel: Annotated[bool, typer.Option(help="Cancel the pending downgrade")] = False,
    wait: Wait = False,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Downgrade as the plans file's rule says (the period's end unless changed) or
    --immediately; --preview checks usage, --cancel cancels a pending downgrade.

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
        body = {"to_plan": to} | ({"effective": "immediately"} if immediately else {})
        started = checked(http.post(f"/tenants/{tenant_id}/downgrade", json=body))
        effective = started["effective"]
        console.print(
            f"downgrade ({effective}) started: workflow [bold]{started['workflow_id']}[/bold]"
        )
        if not wait:
            return
        view = wait_operation(
            http,
            started["workflow_id"],
            timeout,
            settled=lambda p: effective != "immediately" and p.get("effective_at") is not None,
        )
    if view["status"] == "running":
        console.print(f"scheduled: takes effect at {view['result']['progress']['effective_at']}")


def _money(cents: int, currency: str | None) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) / 100:.2f} {(currency or '').upper()}".strip()


def print_preview(preview: dict[str, Any]) -> None:
    """The answer of ``GET /tenants/{id}/plan-change-preview`` for a person."""
    verdict = "[green]allowed[/green]" if preview["allowed"] else "[red]refused[/red]"
    console.print(
        f"{preview['tenant_id']}: {preview['from_plan']} -> {preview['to_plan']} "
        f"({preview['direction']}), rule [bold]{preview['rule']}[/bold]: {verdict}"
    )
    for reason in preview["reasons"]:
        console.print(f"  - {reason}", markup=False)  # "[changes.x] y" is not markup
    table = Table("resource", "now", "after", "change", "usage")
    over = {v["resource"] for v in preview["violations"]}
    for e in preview["entitlements"]:
        used = preview["usage"].get(e["resource"], 0)
        table.add_row(
            e["resource"],
            _unlimited(e["current"]),
            _unlimited(e["target"]),
            e["change"],
            f"{used} (over)" if e["resource"] in over else str(used),
        )
    console.print(table)
    proration = preview["proration"]
    if proration["available"]:
        currency = proration["currency"]
        console.print(
            f"proration ({proration['proration_behavior']}): "
            f"{_money(proration['amount_cents'], currency)}; next invoice "
            f"{_money(proration['next_invoice_cents'], currency)}"
        )
    else:
        console.print(f"proration unavailable: {proration['reason']}", markup=False)


def _unlimited(limit: int) -> str:
    return "unlimited" if limit == -1 else str(limit)


@app.command("change-plan")
def tenants_change_plan(
    tenant_id: str,
    to: Annotated[str, typer.Option("--to", help="Target plan, above or below the current")],
    preview: Annotated[
        bool, typer.Option(help="Only show the rule, usage check, entitlements and proration")
    ] = False,
    api_url: ApiUrl = None,
) -> None:
    """Change plan as the plans file's rule for the pair says (upgrade now, downgrade at the
    period's end by default, or refused); --preview shows what it would do and the prorated
    amount from Stripe's invoice preview."""
    with api_client(api_url) as http:
        answer = checked(
            http.get(f"/tenants/{tenant_id}/plan-change-preview", params={"to_plan": to})
        )
        if preview:
            print_preview(answer)
            return
        if answer["rule"] == "not_allowed":
            print_preview(answer)
            raise typer.Exit(1)
        route = answer["direction"]  # "upgrade" or "downgrade": the route of that name
        started = checked(http.post(f"/tenants/{tenant_id}/{route}", json={"to_plan": to}))
    console.print(
        f"{route} ({answer['effective']}) started: workflow [bold]{started['workflow_id']}[/bold]"
    )


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
