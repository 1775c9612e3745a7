"""What every ``tenantctl`` command shares: the console, the settings and the API client.

Commands that operate tenants talk to the API (``--api``, default http://API_HOST:API_PORT)
with the bearer token TENANTCTL_TOKEN (a named token of API_TOKENS_FILE), else API_TOKEN or
``.data/api_token``.
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
import typer
from rich.console import Console

from lifecycle.config import Settings

console = Console()
ApiUrl = Annotated[str | None, typer.Option("--api", help="API base URL")]


def load_settings() -> Settings:
    """The settings from the environment, or exit 2 naming the bad variable."""
    try:
        return Settings()
    except Exception as exc:  # pydantic's message names the variable; show it, no traceback
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from exc


def api_client(api_url: str | None = None) -> httpx.Client:
    """An HTTP client for the API with the bearer token set (TENANTCTL_TOKEN, else API_TOKEN
    or the generated one)."""
    settings = load_settings()
    base = api_url or f"http://{settings.api_host}:{settings.api_port}"
    if settings.tenantctl_token is not None:
        token = settings.tenantctl_token.get_secret_value()
    else:
        token = settings.secret("api_token")
    return httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {token}"},
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
