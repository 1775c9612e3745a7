"""``tenantctl datamap``: the data map (DATA_MAP_PATH)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from lifecycle.cli.common import console, load_settings
from lifecycle.dev.adtech.env import app_urls
from lifecycle.dev.stack import sample_application_env

app = typer.Typer(help="The data map (DATA_MAP_PATH).", no_args_is_help=True)


@app.command("check")
def datamap_check(
    tenant: Annotated[
        str | None, typer.Option(help="Count this tenant's data (its data_key) only")
    ] = None,
    file: Annotated[Path | None, typer.Option(help="Data map file (default DATA_MAP_PATH)")] = None,
) -> None:
    """Validate the data map against the live databases and storage, then list row and file
    counts per store; exit 1 naming the bad entry (unknown database, table or column, a
    parent cycle, a storage URL without {tenant_key}), or listing the unmapped tables that
    hold tenant data (a tenant column or a foreign key into a mapped table) and are not
    under [[ignore]]."""
    from lifecycle.domain.errors import ConfigError, TenantNotFound
    from lifecycle.persistence.engine import Sessions, control_plane_engine
    from lifecycle.persistence.tenants import TenantRepository
    from lifecycle.storage.datamap import load_datamap
    from lifecycle.storage.exports import s3_options
    from lifecycle.storage.stores import TenantStores, UnmappedTable

    settings = load_settings()
    if file is None:  # the embedded default: the sample application's map, as `tenantctl dev`
        os.environ.update(sample_application_env(settings))
    for var, value in app_urls(settings.data_dir).items():
        os.environ.setdefault(var, value)
    path = file or settings.data_map_path
    if path is None:
        console.print("[red]no data map:[/red] set DATA_MAP_PATH or pass --file")
        raise typer.Exit(1)

    async def run() -> tuple[str, dict[str, dict[str, int]], list[UnmappedTable]]:
        stores = await TenantStores.open(load_datamap(path), s3_options(settings))
        try:
            unmapped = await stores.discover()
            if tenant is None:
                return "all tenants", await stores.total_counts(), unmapped
            engine = control_plane_engine(settings)
            try:
                found = await TenantRepository(Sessions(engine)).get(tenant)
            finally:
                await engine.dispose()
            counts = await stores.counts(found.data_key)
            return f"tenant {tenant} (data_key {found.data_key})", counts, unmapped
        finally:
            await stores.close()

    try:
        scope, counts, unmapped = asyncio.run(run())
    except (ConfigError, TenantNotFound) as exc:
        console.print(f"[red]data map check failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    columns = ("rows", "files", "bytes", "keys")
    table = Table("store", *columns, title=f"Data map {path}: {scope}")
    for store, c in counts.items():
        table.add_row(store, *(str(c[k]) if k in c else "" for k in columns))
    console.print(table)
    if tenant is not None and not any(any(c.values()) for c in counts.values()):
        console.print(
            f"[yellow]warning:[/yellow] {scope} has no data in any store of the data map: "
            "its export would be empty and its purge would delete nothing. Is the data key "
            "the application's key of this tenant?"
        )
    if unmapped:
        console.print(f"[red]{len(unmapped)} unmapped table(s) hold tenant data:[/red]")
        for item in unmapped:
            console.print(
                f"  {item.store}: {item.why}; map it or list it under [[ignore]] with a reason"
            )
        raise typer.Exit(1)
    console.print("[green]data map OK[/green]")
