"""The OpenAPI document tells the truth and the docs pages work offline (issue 14, item 7)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from lifecycle.api.app import create_app
from tests.support.fixtures import make_settings


@pytest.fixture
def app(tmp_path: Path) -> FastAPI:
    return create_app(make_settings(tmp_path))


def test_bearer_scheme_on_every_protected_operation(app: FastAPI) -> None:
    spec = app.openapi()
    assert spec["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a token of API_TOKEN or API_TOKENS_FILE",
    }
    public = {("get", "/health"), ("post", "/webhooks/stripe")}
    public.add(("get", "/exports/{export_id}/download"))
    public.add(("get", "/certificates/keys"))
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            secured = operation.get("security") == [{"HTTPBearer": []}]
            assert secured != ((method, path) in public), (method, path)


def test_errors_are_documented_as_problem_json(app: FastAPI) -> None:
    spec = app.openapi()
    upgrade = spec["paths"]["/tenants/{tenant_id}/upgrade"]["post"]["responses"]
    assert upgrade["202"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/OperationStarted"
    )
    for status in ("400", "401", "403", "404", "409", "413", "422", "503"):
        assert list(upgrade[status]["content"]) == ["application/problem+json"], status
    assert "410" in spec["paths"]["/exports/{export_id}"]["get"]["responses"]
    assert set(spec["components"]["schemas"]["Problem"]["required"]) == {
        "title",
        "status",
        "detail",
    }


def test_tenant_id_pattern_and_plan_names_in_request_schemas(app: FastAPI) -> None:
    schemas = app.openapi()["components"]["schemas"]
    onboard = schemas["OnboardRequest"]["properties"]
    assert onboard["tenant_id"]["pattern"].startswith("^[a-z0-9]")
    names = ["free", "starter", "professional", "enterprise"]
    assert onboard["plan"]["enum"] == names
    assert schemas["UpgradeRequest"]["properties"]["to_plan"]["enum"] == names
    assert schemas["DowngradeRequest"]["properties"]["to_plan"]["enum"] == names


def test_docs_and_redoc_load_their_assets_from_this_server(app: FastAPI) -> None:
    client = TestClient(app)  # no lifespan: the docs need neither Temporal nor the database
    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200 and "cdn" not in html.text.lower(), page
    docs = client.get("/docs").text
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static-offline-docs/{asset}" in docs
        r = client.get(f"/static-offline-docs/{asset}")
        assert r.status_code == 200 and len(r.content) > 10_000
    assert "/static-offline-docs/redoc.standalone.js" in client.get("/redoc").text
    assert client.get("/static-offline-docs/redoc.standalone.js").status_code == 200
    assert httpx.codes.is_success(client.get("/openapi.json").status_code)
