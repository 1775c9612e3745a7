"""``tenantctl dev|demo|worker|api``: run the embedded stack, the main job, a worker or the API."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Annotated

import typer
from rich.table import Table

from lifecycle.cli.common import console, load_settings
from lifecycle.config import Settings
from lifecycle.dev.devserver import port_in_use, start_dev_server, wait_for_port
from lifecycle.dev.stack import sample_application_env, serve, wait_for_temporal
from lifecycle.logs import configure_logging

app = typer.Typer()


def _api_token_line(settings: Settings) -> str:
    """What to show of the API token: the token only when it was generated just now;
    otherwise where it comes from (never print a token the operator already has)."""
    if settings.api_token is not None:
        return "from API_TOKEN"
    path = settings.data_dir / "api_token"
    existed = path.exists()
    token = settings.secret("api_token")
    return f"{path} (kept)" if existed else f"{token}  (new, saved in {path})"


@app.command()
def dev(
    demo: Annotated[bool, typer.Option(help="Run the main job (tenantctl demo) once up")] = False,
) -> None:
    """Start the embedded stack: Temporal dev server (Web UI), worker and API; Ctrl-C stops all."""
    settings = load_settings()
    configure_logging(settings)
    # the worker is a child process: it reads the data map from the environment
    os.environ.update(sample_application_env(settings))
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
    token = _api_token_line(settings)
    ui = f"http://127.0.0.1:{settings.temporal_ui_port}" if settings.embedded else "(your cluster)"
    table = Table(title="Tenant Lifecycle — embedded stack", show_header=False)
    table.add_row("Temporal", settings.temporal_target)
    table.add_row("Web UI", f"{ui}/namespaces/{settings.temporal_namespace}/workflows")
    table.add_row("API", f"http://{settings.api_host}:{settings.api_port}  (docs: /docs)")
    table.add_row(
        "Console",
        f"http://{settings.api_host}:{settings.api_port}/console  (sign in with the API token)",
    )
    table.add_row("API token", token)
    table.add_row("Database", str(settings.redacted()["database_url"]))

    async def after_start() -> None:
        from lifecycle.dev.demo import run_demo

        await asyncio.to_thread(wait_for_port, settings.api_host, settings.api_port)
        await run_demo(settings, console, serving=True)

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
    """Run the main job against a running stack (tenantctl dev in another terminal, or
    TEMPORAL_ADDRESS / DATABASE_URL / API_PORT of yours): every lifecycle operation on the
    sample application, with a summary table. Exits 1 unless every step ran as expected."""
    from lifecycle.dev.demo import run_demo

    settings = load_settings()
    os.environ.update(sample_application_env(settings))
    steps = asyncio.run(run_demo(settings, console))
    if not all(step.ok for step in steps):
        raise typer.Exit(1)


@app.command()
def worker() -> None:
    """Run a worker process (any number may run against one task queue): python -m worker."""
    load_settings()  # a configuration error exits 2 here, naming the variable
    os.execv(sys.executable, [sys.executable, "-m", "worker"])


@app.command()
def api() -> None:
    """Run the HTTP API alone (uvicorn)."""
    import uvicorn

    from lifecycle.api.app import create_app
    from lifecycle.api.server import uvicorn_config

    settings = load_settings()
    configure_logging(settings)
    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run()
