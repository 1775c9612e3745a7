"""``tenantctl tokens create NAME --role ROLE``: a named API token with a role."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lifecycle.api.auth import ROLES, create_token
from lifecycle.cli.common import console, load_settings
from lifecycle.domain.errors import ConfigError

app = typer.Typer(help="Named API tokens with roles (API_TOKENS_FILE).", no_args_is_help=True)


@app.command("create")
def tokens_create(
    name: Annotated[str, typer.Argument(help="the token's name: the audit log's actor")],
    role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")],
    file: Annotated[
        Path | None, typer.Option(help="tokens file (default: API_TOKENS_FILE)")
    ] = None,
) -> None:
    """Generate a token, print it once and append its SHA-256 to the tokens file; exit 2 when
    the name, role or file is invalid. The API reads the file at start-up."""
    path = file or load_settings().api_tokens_file
    if path is None:
        console.print("[red]no tokens file:[/red] set API_TOKENS_FILE or pass --file")
        raise typer.Exit(2)
    try:
        token = create_token(path, name, role)
    except ConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"token '{name}' ({role}) added to {path}; restart the API to load it.")
    console.print("It is shown only now, keep it:")
    print(token)
