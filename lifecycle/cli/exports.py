"""``tenantctl export``: GDPR exports through the API, with a verified download."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
from rich.table import Table

from lifecycle.cli.common import ApiUrl, api_client, checked, console
from lifecycle.cli.waiting import Snapshot, State, Timeout, Wait, ended, follow

app = typer.Typer()
exports_app = typer.Typer(help="GDPR exports, through the API.", no_args_is_help=True)


def download_verified(url: str, output: Path, sha256: str, size: int) -> None:
    """Stream ``url`` to ``output`` with a progress bar; exit 1 unless its SHA-256 matches.

    No bearer token is sent: the link is signed (HMAC for the API, SigV4 for S3).
    """
    digest = hashlib.sha256()
    columns = (TextColumn("download"), BarColumn(), DownloadColumn())
    with (
        httpx.stream("GET", url, timeout=60, follow_redirects=True) as response,
        Progress(*columns, console=console) as bar,
        output.open("wb") as fh,
    ):
        if response.is_error:
            response.read()
            checked(response)
        task = bar.add_task("download", total=size)
        for block in response.iter_bytes(1024 * 1024):
            digest.update(block)
            fh.write(block)
            bar.advance(task, len(block))
    if digest.hexdigest() != sha256:
        console.print(f"[red]SHA-256 mismatch[/red]: got {digest.hexdigest()}, expected {sha256}")
        raise typer.Exit(1)
    console.print(f"saved {output} ({size} bytes), SHA-256 {sha256} verified")
    warn_if_empty(output)


def warn_if_empty(archive: Path) -> None:
    """Warn when the archive's manifest lists no row, no file and no cache key: the tenant's
    data key matched nothing in any store of the data map (a typo'd or wrong ``data_key`` is
    the usual cause), which an empty but valid ZIP would otherwise hide."""
    with zipfile.ZipFile(archive) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    entries = manifest["files"]
    held = sum(e.get("rows", 0) + e.get("keys", 0) for e in entries)
    held += sum(1 for e in entries if "rows" not in e and "keys" not in e)
    if not held:
        tenant = manifest["tenant_id"]
        console.print(
            f"[yellow]warning:[/yellow] tenant '{tenant}' has no data in any store of the data "
            "map: the archive holds no row, file or cache entry. Check its data key "
            f"(tenantctl tenants show {tenant}; tenantctl datamap check --tenant {tenant})."
        )


def export_snapshot(view: dict[str, Any]) -> Snapshot:
    """The ``--wait`` snapshot of ``GET /exports/{id}``'s answer: its status and chunks."""
    progress = view["progress"]
    status = view["status"]
    state: State = (
        "succeeded" if status == "completed" else "failed" if status == "failed" else "running"
    )
    return Snapshot(
        state,
        view["status"],
        view,
        done=progress.get("chunks_done"),
        total=progress.get("chunks_total") or None,
        error=view.get("error"),
    )


@app.command("export")
def export(
    tenant_id: str,
    export_type: Annotated[str, typer.Option("--type", help="full or tables")] = "full",
    wait: Wait = False,
    output: Annotated[
        Path | None, typer.Option(help="Download the archive here and verify its SHA-256")
    ] = None,
    timeout: Timeout = 3600,
    api_url: ApiUrl = None,
) -> None:
    """Export a tenant's data (GDPR Art. 15/20) through the API; --output implies --wait.

    Exits 1 when the export failed, 3 when it has not ended within --timeout seconds (it goes
    on: follow it with GET /exports/ID)."""
    with api_client(api_url) as http:
        started = checked(
            http.post(f"/tenants/{tenant_id}/exports", json={"export_type": export_type})
        )
        export_id = started["export_id"]
        console.print(f"export [bold]{export_id}[/bold] started: workflow {started['workflow_id']}")
        if not (wait or output):
            return
        snap = follow(
            lambda: export_snapshot(checked(http.get(f"/exports/{export_id}"))),
            f"export {export_id}",
            f"GET /exports/{export_id}",
            timeout,
        )
    view = ended(snap, "export")
    console.print(f"completed: {view['size_bytes']} bytes, SHA-256 {view['sha256']}")
    if output:
        download_verified(view["download_url"], output, view["sha256"], view["size_bytes"])
    else:
        console.print(f"download (until {view['expires_at']}): {view['download_url']}")


@exports_app.command("list")
def exports_list(tenant_id: str, api_url: ApiUrl = None) -> None:
    """A tenant's exports, newest first."""
    with api_client(api_url) as http:
        views = checked(http.get(f"/tenants/{tenant_id}/exports"))
    table = Table("export", "type", "status", "created", "bytes", "SHA-256")
    table.columns[-1].overflow = "fold"
    for v in views:
        size = str(v["size_bytes"]) if v.get("size_bytes") is not None else ""
        table.add_row(
            v["export_id"], v["export_type"], v["status"], v["created_at"], size, v["sha256"] or ""
        )
    console.print(table)
    console.print(f"{len(views)} export(s)")


@exports_app.command("show")
def exports_show(export_id: str, api_url: ApiUrl = None) -> None:
    """One export: status, progress, size, SHA-256 and, once completed, its download link."""
    with api_client(api_url) as http:
        console.print_json(data=checked(http.get(f"/exports/{export_id}")))
