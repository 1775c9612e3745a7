"""``tenantctl db``: the control-plane database."""

from __future__ import annotations

import asyncio

import typer

from lifecycle.cli.common import console, load_settings

app = typer.Typer(help="The control-plane database.", no_args_is_help=True)


@app.command("upgrade")
def db_upgrade() -> None:
    """Apply the Alembic migrations to DATABASE_URL."""
    from lifecycle.persistence.engine import control_plane_engine, migrate

    settings = load_settings()

    async def run() -> None:
        engine = control_plane_engine(settings)
        await migrate(engine)
        await engine.dispose()

    asyncio.run(run())
    console.print(f"database at {settings.redacted()['database_url']} is up to date")
