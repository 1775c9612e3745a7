"""Named tokens with roles (issue 14, item 9): API_TOKENS_FILE written by ``tenantctl tokens
create``, every route tried with every role, 403 naming the role needed, and the audit log's
actor is the token's name."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from lifecycle.api.app import create_app
from lifecycle.api.auth import ROLES, TokenRegistry, read_tokens_file, token_hash
from lifecycle.domain.errors import ConfigError
from tests.support.api import assert_problem, wait_operation
from tests.support.fixtures import make_settings, running_stack, serve_api, uid

T, E, W = "nobody-co", "0" * 32, "tenant-nobody-co-onboard"
M, V = "0" * 16, "987654"  # a plan migration id, an outbound event id
#: Every route that needs a token: (method, path, role needed, JSON body).
MATRIX: list[tuple[str, str, str, dict | None]] = [
    ("GET", "/tenants", "viewer", None),
    ("GET", f"/tenants/{T}", "viewer", None),
    ("GET", f"/tenants/{T}/events", "viewer", None),
    ("GET", f"/tenants/{T}/operations", "viewer", None),
    ("GET", f"/tenants/{T}/exports", "viewer", None),
    ("GET", f"/tenants/{T}/downgrade-preview?to_plan=free", "viewer", None),
    ("GET", f"/tenants/{T}/plan-change-preview?to_plan=free", "viewer", None),
    ("GET", f"/exports/{E}", "viewer", None),
    ("GET", f"/operations/{W}", "viewer", None),
    ("GET", "/plans", "viewer", None),
    ("GET", "/status", "viewer", None),
    ("GET", "/reconciliation", "viewer", None),
    ("GET", "/events/deliveries?status=failed", "viewer", None),
    ("POST", "/tenants", "operator", {"tenant_id": T, "name": "N", "email": "a@b.io"}),
    ("POST", f"/tenants/{T}/upgrade", "operator", {"to_plan": "enterprise"}),
    ("POST", f"/tenants/{T}/downgrade", "operator", {"to_plan": "free"}),
    ("POST", f"/tenants/{T}/downgrade/cancel", "operator", None),
    ("PUT", f"/tenants/{T}/usage", "operator", {"users": 1}),
    ("POST", f"/tenants/{T}/suspend", "operator", {"reason": "r"}),
    ("POST", f"/tenants/{T}/pause", "operator", {"reason": "r"}),
    ("POST", f"/tenants/{T}/resume", "operator", None),
    ("POST", f"/tenants/{T}/reactivate", "operator", {}),
    ("POST", f"/tenants/{T}/delete", "operator", {"requested_by": "dpo"}),
    ("POST", f"/tenants/{T}/exports", "operator", {}),
    ("POST", f"/tenants/{T}/legal-hold", "dpo", {"reason": "litigation"}),
    ("DELETE", f"/tenants/{T}/legal-hold", "dpo", None),
    ("GET", f"/tenants/{T}/deletion-certificate", "dpo", None),
    ("GET", f"/exports/{E}/archive", "dpo", None),
    ("POST", f"/tenants/{T}/purge", "dpo", {"requested_by": "dpo", "reason": "r", "confirm": T}),
    ("POST", "/reconciliation", "operator", None),
    ("POST", "/upgrade", "operator", {"tenant_id": T, "new_plan": "enterprise"}),
    ("POST", "/downgrade", "operator", {"tenant_id": T, "new_plan": "free"}),
    ("POST", "/export", "operator", {"tenant_id": T}),
    ("POST", "/delete", "operator", {"tenant_id": T}),
    ("POST", "/reactivate", "operator", {"tenant_data": {"tenant_id": T}}),
    ("POST", f"/events/{V}/redeliver", "operator", None),
    ("GET", "/config", "admin", None),
    ("GET", f"/bulk/plan-migrations/{M}", "viewer", None),
    ("POST", "/bulk/plan-migrations", "admin", {"from_plan": "free", "to_plan": "starter"}),
    ("POST", f"/bulk/plan-migrations/{M}/pause", "admin", None),
    ("POST", f"/bulk/plan-migrations/{M}/resume", "admin", None),
    ("POST", f"/bulk/plan-migrations/{M}/cancel", "admin", None),
]
GRANTED = {
    "viewer": {"viewer"},
    "operator": {"viewer", "operator"},
    "dpo": {"viewer", "dpo"},
    "admin": {"viewer", "operator", "dpo", "admin"},
}


def tenantctl(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tenantctl"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A tokens file with one token per role, made with ``tenantctl tokens create`` (once per
    module: each command is a new interpreter, ~4 s under a loaded CI)."""
    folder = tmp_path_factory.mktemp("tokens")
    path = folder / "tokens.toml"
    made = {}
    for role in ROLES:
        out = tenantctl(
            "tokens", "create", f"{role}-bot", "--role", role, "--file", str(path), cwd=folder
        )
        made[role] = out.strip().splitlines()[-1]
    assert not any(token in path.read_text() for token in made.values())
    return path, made


@pytest.fixture
async def api(
    dev_env: WorkflowEnvironment, tmp_path: Path, tokens: tuple[Path, dict[str, str]]
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(tmp_path, api_tokens_file=tokens[0])
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        yield http


def test_matrix_covers_every_route_that_needs_a_token(tmp_path: Path) -> None:
    spec = create_app(make_settings(tmp_path)).openapi()
    public = {
        ("GET", "/health"),
        ("POST", "/webhooks/stripe"),
        ("GET", "/exports/{export_id}/download"),
        ("GET", "/certificates/keys"),
    }
    documented = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
    } - public
    templates = {
        (
            m,
            p.split("?")[0]
            .replace(W, "{workflow_id}")
            .replace(T, "{tenant_id}")
            .replace(E, "{export_id}")
            .replace(M, "{migration_id}")
            .replace(V, "{event_id}"),
        )
        for m, p, _, _ in MATRIX
    }
    assert templates == documented


@pytest.mark.parametrize("role", ROLES)
async def test_every_route_admits_exactly_the_roles_that_grant_it(
    api: httpx.AsyncClient, tokens: tuple[Path, dict[str, str]], role: str
) -> None:
    headers = {"Authorization": f"Bearer {tokens[1][role]}"}
    for method, path, needed, body in MATRIX:
        r = await api.request(method, path, json=body, headers=headers)
        if needed in GRANTED[role]:
            assert r.status_code not in (401, 403), (role, method, path, r.text)
        else:
            problem = assert_problem(r, 403, f"needs role '{needed}'", f"'{role}-bot'")
            assert problem["needed_role"] == needed, (role, method, path)


async def test_audit_actor_is_the_token_name(
    api: httpx.AsyncClient, tokens: tuple[Path, dict[str, str]]
) -> None:
    tenant = uid("who")
    headers = {"Authorization": f"Bearer {tokens[1]['operator']}"}
    r = await api.post(
        "/tenants", json={"tenant_id": tenant, "name": "W", "email": "w@w.io"}, headers=headers
    )
    assert r.status_code == 202, r.text
    assert await wait_operation(api, r.json()["workflow_id"], headers=headers) == "completed"
    r = await api.post(f"/tenants/{tenant}/suspend", json={"reason": "audit"}, headers=headers)
    assert await wait_operation(api, r.json()["workflow_id"], headers=headers) == "completed"
    events = (await api.get(f"/tenants/{tenant}/events", headers=headers)).json()
    assert [(e["operation"], e["actor"]) for e in events] == [
        ("onboard", "operator-bot"),
        ("suspend", "operator-bot"),
    ]


async def test_unknown_token_and_api_token_without_file(api: httpx.AsyncClient) -> None:
    # With API_TOKENS_FILE and no API_TOKEN nothing else is admitted... except the test
    # settings' API_TOKEN, the single admin token named "api".
    assert_problem(await api.get("/tenants", headers={"Authorization": "Bearer nope"}), 401)
    assert (await api.get("/config")).status_code == 200


def test_registry_compares_hashes(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text(
        f'[[tokens]]\nname = "ops"\nrole = "viewer"\nsha256 = "{token_hash("s3cret")}"\n'
    )
    registry = TokenRegistry.load("admin-token", path)
    assert registry.authenticate("s3cret") is not None
    assert registry.authenticate("s3cret").name == "ops"  # type: ignore[union-attr]
    assert registry.authenticate("admin-token").role == "admin"  # type: ignore[union-attr]
    assert registry.authenticate("é") is None


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ('[[tokens]]\nname = "a b"\nrole = "viewer"\nsha256 = "' + "0" * 64 + '"\n', "name"),
        ('[[tokens]]\nname = "ops"\nrole = "root"\nsha256 = "' + "0" * 64 + '"\n', "role"),
        ('[[tokens]]\nname = "ops"\nrole = "viewer"\nsha256 = "plain-token"\n', "sha256"),
        ("[[tokens]\n", "API_TOKENS_FILE"),
    ],
)
def test_invalid_tokens_file_names_the_entry(tmp_path: Path, content: str, error: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=error):
        read_tokens_file(path)


def test_tenantctl_sends_its_named_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lifecycle.cli.common import api_client

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TENANTCTL_TOKEN", "named-token-1")
    monkeypatch.setenv("API_TOKEN", "admin-token-1")
    with api_client() as http:
        assert http.headers["authorization"] == "Bearer named-token-1"
    monkeypatch.delenv("TENANTCTL_TOKEN")
    with api_client() as http:
        assert http.headers["authorization"] == "Bearer admin-token-1"
