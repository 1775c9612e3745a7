"""``tenantctl certificate get|verify``: deletion certificates."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import httpx
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from lifecycle.cli.common import ApiUrl, api_client, checked, console, load_settings
from lifecycle.domain.certificate import key_id, load_public_key, verify

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


def _safe(value: object) -> str:
    """Any value as printable ASCII (a hostile certificate may hold control characters or
    text the terminal's encoding cannot show)."""
    return str(value).encode("ascii", "backslashreplace").decode("ascii").replace("[", "\\[")


def _public_keys(
    public_key: Path | None, keys_url: str | None
) -> tuple[dict[str, Ed25519PublicKey], str]:
    """The public keys to verify with, and where they came from. Raises ValueError."""
    if public_key is not None:
        key = load_public_key(public_key.read_bytes())
        return {key_id(key): key}, str(public_key)
    if keys_url is not None:
        response = httpx.get(keys_url, timeout=10)
        response.raise_for_status()
        keys = [load_public_key(k["public_key"]) for k in response.json()["keys"]]
        return {key_id(k): k for k in keys}, keys_url
    local = load_settings().data_dir / "certificate_signing_key.pem"
    if local.exists():  # this machine's control plane (never generated here)
        from cryptography.hazmat.primitives import serialization

        private = serialization.load_pem_private_key(local.read_bytes(), password=None)
        mine = private.public_key()
        if isinstance(mine, Ed25519PublicKey):
            return {key_id(mine): mine}, str(local)
    return {}, "no key given"


@app.command("verify")
def certificate_verify(
    file: Path,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="PEM file of the Ed25519 public key")
    ] = None,
    keys_url: Annotated[
        str | None, typer.Option("--keys-url", help="URL of GET /certificates/keys")
    ] = None,
) -> None:
    """Verify a certificate FILE offline: its SHA-256, and its Ed25519 signature under the
    key its kid names (from --public-key, --keys-url, or this machine's data dir); no
    secret needed. An old HMAC-SHA256 certificate verifies only with SIGNING_SECRET set in
    the environment, and is reported as such. Exit 0 valid, 1 invalid, 2 unreadable input
    or keys."""
    try:
        certificate = json.loads(file.read_bytes())
    except (OSError, ValueError, RecursionError) as exc:
        console.print(f"[red]cannot read {_safe(file)}:[/red] {_safe(exc)}")
        raise typer.Exit(2) from None
    try:
        keys, source = _public_keys(public_key, keys_url)
    except (OSError, ValueError, KeyError, TypeError, httpx.HTTPError) as exc:
        console.print(f"[red]cannot load the public keys:[/red] {_safe(exc)}")
        raise typer.Exit(2) from None
    secret = os.environ.get("SIGNING_SECRET") or None
    result = verify(certificate, keys, secret)
    scheme = result.algorithm + (f" key {_safe(result.kid)}" if result.kid else "")
    if not result.valid:
        for problem in result.problems:
            console.print(f"[red]INVALID[/red] ({scheme}) {_safe(problem)}")
        if result.algorithm == "Ed25519":
            console.print(f"keys: {_safe(source)}")
        raise typer.Exit(1)
    doc = certificate["document"]
    legacy = " (old HMAC-SHA256 scheme, verified with SIGNING_SECRET)" if result.kid is None else ""
    console.print(
        f"[green]valid[/green]: signed by {scheme}{legacy}; tenant {_safe(doc.get('tenant_id'))} "
        f"purged at {_safe(doc.get('purged_at'))}, sha256 {_safe(certificate['sha256'])}"
    )
