"""``tenantctl certificate get|verify``: deletion certificates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from lifecycle.cli.common import ApiUrl, api_client, checked, console, load_settings
from lifecycle.domain.certificate import verify

app = typer.Typer(help="Deletion certificates.", no_args_is_help=True)


@app.command("get")
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


@app.command("verify")
def certificate_verify(file: Path) -> None:
    """Verify a certificate FILE: its SHA-256 and its HMAC under SIGNING_SECRET; exit 1 if
    either fails."""
    try:
        certificate = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        console.print(f"[red]cannot read {file}:[/red] {exc}")
        raise typer.Exit(2) from exc
    problems = verify(certificate, load_settings().secret("signing_secret"))
    if problems:
        for problem in problems:
            console.print(f"[red]INVALID[/red] {problem}")
        raise typer.Exit(1)
    doc = certificate["document"]
    console.print(
        f"[green]valid[/green]: tenant {doc['tenant_id']} purged at {doc['purged_at']}, "
        f"sha256 {certificate['sha256']}"
    )
