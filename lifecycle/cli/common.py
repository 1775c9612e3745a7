"""What every ``tenantctl`` command shares: the console, the settings and the API client.

Commands that operate tenants talk to the API (``--api``, default http://API_HOST:API_PORT)
with the bearer token TENANTCTL_TOKEN (a named token of API_TOKENS_FILE), else API_TOKEN or
``.data/api_token``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from lifecycle.config import Settings

console = Console()
ApiUrl = Annotated[str | None, typer.Option("--api", help="API base URL")]


def find_data_dir(start: Path) -> Path | None:
    """The nearest ``.data`` folder of a stack at or above ``start`` (one holding the
    ``api_token`` or ``lifecycle.db`` that ``tenantctl dev`` writes), or None."""
    for folder in (start, *start.parents):
        candidate = folder / ".data"
        if (candidate / "api_token").is_file() or (candidate / "lifecycle.db").is_file():
            return candidate
    return None


def load_settings() -> Settings:
    """The settings from the environment, or exit 2 naming the bad variable.

    Without DATA_DIR, the data dir is the nearest stack's ``.data`` at or above the current
    directory, so that commands run from a subfolder find the embedded stack's state.
    """
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's message names the variable; show it, no traceback
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if "DATA_DIR" not in os.environ and "data_dir" not in settings.model_fields_set:
        found = find_data_dir(Path.cwd())
        if found is not None:
            settings.data_dir = found
    return settings


def api_token(settings: Settings) -> str:
    """The bearer token of a client command: TENANTCTL_TOKEN (a named token), API_TOKEN, or
    the stack's ``api_token`` file.

    Never creates one: exits 2 with what to do when none exists.
    """
    if settings.tenantctl_token is not None:
        return settings.tenantctl_token.get_secret_value()
    if settings.api_token is not None:
        return settings.api_token.get_secret_value()
    path = settings.data_dir / "api_token"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    console.print(
        f"[red]no API token:[/red] set API_TOKEN, or DATA_DIR to the stack's data dir "
        f"(no {path} here or in any parent folder's .data/)"
    )
    raise typer.Exit(2)


def api_client(api_url: str | None = None) -> httpx.Client:
    """An HTTP client for the API with the bearer token set (:func:`api_token`)."""
    settings = load_settings()
    base = api_url or f"http://{settings.api_host}:{settings.api_port}"
    return httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {api_token(settings)}"},
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
