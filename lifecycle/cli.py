"""``tenantctl``: run the embedded stack, the worker or the API, and operate tenants.

Commands that operate tenants talk to the API (``--api``, default http://API_HOST:API_PORT)
with the bearer token from API_TOKEN or ``.data/api_token``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from lifecycle.config import Settings
from lifecycle.devserver import port_in_use, start_dev_server, wait_for_port
from lifecycle.logs import configure_logging

app = typer.Typer(help="Tenant Lifecycle control plane.", no_args_is_help=True)
tenants_app = typer.Typer(help="Tenants, through the API.", no_args_is_help=True)
db_app = typer.Typer(help="The control-plane database.", no_args_is_help=True)
datamap_app = typer.Typer(help="The data map (DATA_MAP_PATH).", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(db_app, name="db")
app.add_typer(datamap_app, name="datamap")
console = Console()


def _settings() -> Settings:
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the variable; show it, no traceback
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


async def wait_for_temporal(settings: Settings, timeout: float = 60.0) -> None:
    """Retry connecting until the server's namespace answers (the port opens earlier)."""
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    from lifecycle.client import connect_temporal

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            client = await connect_temporal(settings)
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace)
            )
            return
        except Exception:
            if loop.time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def serve(settings: Settings, after_start: Any = None) -> None:
    """Run the worker and the API in this process until cancelled (Ctrl-C)."""
    import uvicorn

    from starter_api import create_app
    from worker import run_worker

    config = uvicorn.Config(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=None,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    tasks = [
        asyncio.create_task(run_worker(settings), name="worker"),
        asyncio.create_task(server.serve(), name="api"),
    ]
    if after_start is not None:
        tasks.append(asyncio.create_task(after_start(), name="main-job"))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([stopper, *tasks[:2]], return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    for task in tasks:
        if task.get_name() != "api":
            task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for task in done:
        if task is not stopper and task.exception():
            raise task.exception()  # type: ignore[misc]


def use_sample_application(settings: Settings) -> None:
    """Without DATA_MAP_PATH, point the data map at the sample application (examples/adtech)
    with its stores under DATA_DIR, so that the embedded default is one coherent system."""
    if settings.data_map_path is not None:
        return
    from examples.adtech import DATAMAP_PATH
    from examples.adtech.env import app_urls

    os.environ.update(app_urls(settings.data_dir))
    settings.data_map_path = DATAMAP_PATH


@app.command()
def dev(
    demo: Annotated[bool, typer.Option(help="Run the main job (`tenantctl demo`) once up")] = False,
) -> None:
    """Start the embedded stack: Temporal dev server (Web UI), worker and API; Ctrl-C stops all."""
    settings = _settings()
    configure_logging(settings)
    use_sample_application(settings)
    proc = None
    if settings.embedded:
        if port_in_use("127.0.0.1", settings.temporal_dev_port):
            console.print(
                f"[red]port {settings.temporal_dev_port} is taken[/red]: stop the other "
                "server or set TEMPORAL_DEV_PORT / TEMPORAL_ADDRESS"
            )
            raise typer.Exit(1)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        proc = start_dev_server(
            settings.data_dir / "temporal.db",
            port=settings.temporal_dev_port,
            ui_port=settings.temporal_ui_port,
            namespace=settings.temporal_namespace,
            log_file=settings.data_dir / "temporal.log",
        )
    token = settings.secret("api_token")
    ui = f"http://127.0.0.1:{settings.temporal_ui_port}" if settings.embedded else "(your cluster)"
    table = Table(title="Tenant Lifecycle — embedded stack", show_header=False)
    table.add_row("Temporal", settings.temporal_target)
    table.add_row("Web UI", f"{ui}/namespaces/{settings.temporal_namespace}/workflows")
    table.add_row("API", f"http://{settings.api_host}:{settings.api_port}  (docs: /docs)")
    table.add_row("API token", token)
    table.add_row("Database", str(settings.redacted()["database_url"]))

    async def after_start() -> None:
        from lifecycle.demo import run_demo

        await asyncio.to_thread(wait_for_port, settings.api_host, settings.api_port)
        await run_demo(settings, console)

    async def main() -> None:
        await wait_for_temporal(settings)
        console.print(table)
        await serve(settings, after_start if demo else None)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except Exception:
                proc.kill()
        console.print("stopped")


@app.command()
def demo() -> None:
    """Run the main job against a running stack (`tenantctl dev` in another terminal, or
    TEMPORAL_ADDRESS / DATABASE_URL / API_PORT of yours): every lifecycle operation on the
    sample application, with a summary table."""
    from lifecycle.demo import run_demo

    settings = _settings()
    use_sample_application(settings)
    asyncio.run(run_demo(settings, console))


@app.command()
def worker() -> None:
    """Run a worker process (any number may run against one task queue)."""
    from worker import run_worker

    settings = _settings()
    configure_logging(settings)
    asyncio.run(run_worker(settings))


@app.command()
def api() -> None:
    """Run the HTTP API alone (uvicorn)."""
    import uvicorn

    from starter_api import create_app

    settings = _settings()
    configure_logging(settings)
    uvicorn.run(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None
    )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to DATABASE_URL."""
    from lifecycle.db import create_engine, migrate

    settings = _settings()

    async def run() -> None:
        engine = create_engine(settings.db_url)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(run())
    console.print(f"database at {settings.redacted()['database_url']} is up to date")


# -- talking to the API ----------------------------------------------------------------


def api_client(api_url: str | None = None) -> httpx.Client:
    """An HTTP client for the API with the bearer token set."""
    settings = _settings()
    base = api_url or f"http://{settings.api_host}:{settings.api_port}"
    return httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {settings.secret('api_token')}"},
        timeout=30,
    )


def checked(response: httpx.Response) -> Any:
    """The JSON body, or exit 1 printing the problem's detail."""
    if response.is_error:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        console.print(f"[red]{response.status_code}[/red] {detail}")
        raise typer.Exit(1)
    return response.json()


ApiUrl = Annotated[str | None, typer.Option("--api", help="API base URL")]


@tenants_app.command("list")
def tenants_list(
    state: Annotated[str | None, typer.Option(help="Filter by state")] = None,
    plan: Annotated[str | None, typer.Option(help="Filter by plan")] = None,
    api_url: ApiUrl = None,
) -> None:
    """List tenants."""
    params = {k: v for k, v in {"state": state, "plan": plan, "limit": 500}.items() if v}
    with api_client(api_url) as http:
        page = checked(http.get("/tenants", params=params))
    table = Table("tenant", "name", "plan", "state", "updated")
    for t in page["items"]:
        table.add_row(t["tenant_id"], t["name"] or "", t["plan"], t["state"], t["updated_at"])
    console.print(table)
    console.print(f"{page['total']} tenant(s)")


@tenants_app.command("show")
def tenants_show(tenant_id: str, api_url: ApiUrl = None) -> None:
    """Show one tenant and its audit log."""
    with api_client(api_url) as http:
        tenant = checked(http.get(f"/tenants/{tenant_id}"))
        events = checked(http.get(f"/tenants/{tenant_id}/events"))
    console.print_json(data=tenant)
    table = Table("at", "operation", "from", "to", "actor", "workflow")
    for e in events:
        table.add_row(
            e["at"],
            e["operation"],
            e["from_state"] or "",
            e["to_state"] or "",
            e["actor"],
            e["workflow_id"] or "",
        )
    console.print(table)


@tenants_app.command("create")
def tenants_create(
    tenant_id: str,
    name: Annotated[str, typer.Option(help="Display name")],
    email: Annotated[str, typer.Option(help="Billing e-mail")],
    plan: Annotated[str, typer.Option(help="Plan")] = "free",
    data_key: Annotated[str | None, typer.Option(help="Key of its data in the data map")] = None,
    api_url: ApiUrl = None,
) -> None:
    """Onboard a tenant (202: prints the workflow id)."""
    body = {"tenant_id": tenant_id, "name": name, "email": email, "plan": plan}
    if data_key:
        body["data_key"] = data_key
    with api_client(api_url) as http:
        started = checked(http.post("/tenants", json=body))
    console.print(f"onboarding started: workflow [bold]{started['workflow_id']}[/bold]")


@app.command()
def status(api_url: ApiUrl = None) -> None:
    """Tenants per state, running operations and purges due in the next 7 days."""
    with api_client(api_url) as http:
        data = checked(http.get("/status"))
    states = Table("state", "tenants", title="Tenants")
    for state, n in sorted(data["tenants_by_state"].items()):
        states.add_row(state, str(n))
    running = Table("operation", "running", title="Running operations")
    for kind, n in data["running_operations"].items():
        running.add_row(kind, str(n))
    due = Table("tenant", "purge scheduled at (UTC)", title="Purges due in the next 7 days")
    for item in data["purges_due_7d"]:
        due.add_row(item["tenant_id"], item["purge_scheduled_at"])
    for table in (states, running, due):
        console.print(table)


@tenants_app.command("upgrade")
def tenants_upgrade(
    tenant_id: str,
    to: Annotated[str, typer.Option("--to", help="Target plan, above the current one")],
    api_url: ApiUrl = None,
) -> None:
    """Upgrade now (entitlements, then billing with proration); prints the workflow id."""
    with api_client(api_url) as http:
        started = checked(http.post(f"/tenants/{tenant_id}/upgrade", json={"to_plan": to}))
    console.print(f"upgrade started: workflow [bold]{started['workflow_id']}[/bold]")


@tenants_app.command("downgrade")
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
    api_url: ApiUrl = None,
) -> None:
    """Downgrade at the billing period's end (default) or immediately; --preview checks usage,
    --cancel cancels a pending downgrade."""
    with api_client(api_url) as http:
        if cancel:
            done = checked(http.post(f"/tenants/{tenant_id}/downgrade/cancel"))
            console.print(f"cancel sent to workflow [bold]{done['workflow_id']}[/bold]")
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


@tenants_app.command("usage")
def tenants_usage(
    tenant_id: str,
    amounts: Annotated[list[str], typer.Argument(help="RESOURCE=AMOUNT, e.g. users=50")],
    api_url: ApiUrl = None,
) -> None:
    """Record current usage (e.g. ``users=50 storage_gb=40``); shows resources over limit."""
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


# -- data map and exports ---------------------------------------------------------------


@datamap_app.command("check")
def datamap_check(
    tenant: Annotated[
        str | None, typer.Option(help="Count this tenant's data (its data_key) only")
    ] = None,
    file: Annotated[Path | None, typer.Option(help="Data map file (default DATA_MAP_PATH)")] = None,
) -> None:
    """Validate the data map against the live databases and storage, then list row and file
    counts per store; exit 1 naming the bad entry (unknown database, table or column, a
    parent cycle, a storage URL without {tenant_key})."""
    from lifecycle.datamap import load_datamap
    from lifecycle.db import Sessions, create_engine
    from lifecycle.errors import ConfigError, TenantNotFound
    from lifecycle.export.storage import s3_options
    from lifecycle.repository import TenantRepository
    from lifecycle.stores import TenantStores

    settings = _settings()
    path = file or settings.data_map_path
    if path is None:
        console.print("[red]no data map:[/red] set DATA_MAP_PATH or pass --file")
        raise typer.Exit(1)

    async def run() -> tuple[str, dict[str, dict[str, int]]]:
        stores = await TenantStores.open(load_datamap(path), s3_options(settings))
        try:
            if tenant is None:
                return "all tenants", await stores.total_counts()
            engine = create_engine(settings.db_url)
            try:
                found = await TenantRepository(Sessions(engine)).get(tenant)
            finally:
                await engine.dispose()
            return f"tenant {tenant} (data_key {found.data_key})", await stores.counts(
                found.data_key
            )
        finally:
            await stores.close()

    try:
        scope, counts = asyncio.run(run())
    except (ConfigError, TenantNotFound) as exc:
        console.print(f"[red]data map check failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    table = Table("store", "rows", "files", "bytes", title=f"Data map {path}: {scope}")
    for store, c in counts.items():
        table.add_row(store, *(str(c[k]) if k in c else "" for k in ("rows", "files", "bytes")))
    console.print(table)
    console.print("[green]data map OK[/green]")


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


@app.command("export")
def export(
    tenant_id: str,
    export_type: Annotated[str, typer.Option("--type", help="full or tables")] = "full",
    wait: Annotated[bool, typer.Option(help="Follow the progress until it ends")] = False,
    output: Annotated[
        Path | None, typer.Option(help="Download the archive here and verify its SHA-256")
    ] = None,
    api_url: ApiUrl = None,
) -> None:
    """Export a tenant's data (GDPR Art. 15/20) through the API; --output implies --wait."""
    with api_client(api_url) as http:
        started = checked(
            http.post(f"/tenants/{tenant_id}/exports", json={"export_type": export_type})
        )
        export_id = started["export_id"]
        console.print(f"export [bold]{export_id}[/bold] started: workflow {started['workflow_id']}")
        if not (wait or output):
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console) as bar:
            task = bar.add_task("chunks", total=None)
            while True:
                view = checked(http.get(f"/exports/{export_id}"))
                progress = view["progress"]
                if progress.get("chunks_total"):
                    bar.update(
                        task, total=progress["chunks_total"], completed=progress["chunks_done"]
                    )
                if view["status"] in ("completed", "failed"):
                    break
                time.sleep(0.5)
    if view["status"] == "failed":
        console.print(f"[red]export failed:[/red] {view['error']}")
        raise typer.Exit(1)
    console.print(f"completed: {view['size_bytes']} bytes, SHA-256 {view['sha256']}")
    if output:
        download_verified(view["download_url"], output, view["sha256"], view["size_bytes"])
    else:
        console.print(f"download (until {view['expires_at']}): {view['download_url']}")


# deletion, reactivation, suspension, legal hold and certificate commands
from lifecycle import cli_deletion  # noqa: E402,F401
