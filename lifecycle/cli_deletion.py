"""``tenantctl`` commands of soft deletion, reactivation, suspension, legal hold and
deletion certificates (registered on the app of :mod:`lifecycle.cli`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lifecycle.certificate import verify
from lifecycle.cli import ApiUrl, _settings, api_client, app, checked, console, tenants_app

certificate_app = typer.Typer(help="Deletion certificates.", no_args_is_help=True)
app.add_typer(certificate_app, name="certificate")


@tenants_app.command("delete")
def tenants_delete(
    tenant_id: str,
    requested_by: Annotated[str, typer.Option(help="Who asks for the erasure")],
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    retention_days: Annotated[int | None, typer.Option(help="30..90 days")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Soft-delete a tenant; its data is purged after the retention period."""
    body = {"requested_by": requested_by, "reason": reason, "retention_days": retention_days}
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/delete", json=body))
    console.print(
        f"deleted: workflow [bold]{out['workflow_id']}[/bold], purge scheduled at "
        f"{out['hard_delete_scheduled_at']} ({out['retention_days']} days)"
    )


@tenants_app.command("reactivate")
def tenants_reactivate(
    tenant_id: str,
    plan: Annotated[str | None, typer.Option(help="Plan (default: the previous one)")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Reactivate a suspended tenant, or a deleted one within retention."""
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/reactivate", json={"plan": plan}))
    console.print(f"reactivation {out['status']}: workflow [bold]{out['workflow_id']}[/bold]")


@tenants_app.command("suspend")
def tenants_suspend(
    tenant_id: str,
    reason: Annotated[str, typer.Option(help="Why (kept on the tenant and in the audit log)")],
    api_url: ApiUrl = None,
) -> None:
    """Suspend an active tenant (access revoked, subscription kept)."""
    with api_client(api_url) as http:
        out = checked(http.post(f"/tenants/{tenant_id}/suspend", json={"reason": reason}))
    console.print(f"suspension started: workflow [bold]{out['workflow_id']}[/bold]")


@tenants_app.command("legal-hold")
def tenants_legal_hold(
    tenant_id: str,
    release: Annotated[bool, typer.Option("--release", help="Release the hold")] = False,
    reason: Annotated[str | None, typer.Option(help="Why")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Place (or ``--release``) a legal hold: no purge while it stands."""
    path = f"/tenants/{tenant_id}/legal-hold"
    with api_client(api_url) as http:
        response = http.delete(path) if release else http.post(path, json={"reason": reason})
        checked(response)
    console.print(f"legal hold {'released' if release else 'placed'} on {tenant_id}")


@certificate_app.command("get")
def certificate_get(
    tenant_id: str,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write to FILE")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Fetch a purged tenant's deletion certificate (JSON)."""
    with api_client(api_url) as http:
        certificate = checked(http.get(f"/tenants/{tenant_id}/deletion-certificate"))
    if output is None:
        console.print_json(data=certificate)
    else:
        output.write_text(json.dumps(certificate, indent=2), encoding="utf-8")
        console.print(f"written to {output}")


@certificate_app.command("verify")
def certificate_verify(file: Path) -> None:
    """Verify a certificate FILE: its SHA-256 and its HMAC under SIGNING_SECRET; exit 1 if
    either fails."""
    try:
        certificate = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read {file}:[/red] {exc}")
        raise typer.Exit(2) from exc
    problems = verify(certificate, _settings().secret("signing_secret"))
    if problems:
        for problem in problems:
            console.print(f"[red]INVALID[/red] {problem}")
        raise typer.Exit(1)
    doc = certificate["document"]
    console.print(
        f"[green]valid[/green]: tenant {doc['tenant_id']} purged at {doc['purged_at']}, "
        f"sha256 {certificate['sha256']}"
    )
