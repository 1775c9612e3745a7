"""The API app: one FastAPI application with a router per feature and problem+json errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from lifecycle.api import problems
from lifecycle.api.auth import TokenRegistry
from lifecycle.api.guard import Guard
from lifecycle.api.problems import problem_responses
from lifecycle.api.routes import (
    billing_events,
    certificates,
    compat,
    deletion,
    events,
    exports,
    meta,
    plan_changes,
    plan_migrations,
    reactivation,
    reconciliation,
    suspension,
    tenants,
)
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.console import routes as console
from lifecycle.storage.datamap import load_datamap


def create_app(settings: Settings | None = None, client: LifecycleClient | None = None) -> FastAPI:
    """The API app. Without ``client`` it connects (and migrates) on startup.

    Bearer tokens: the named tokens of API_TOKENS_FILE, plus API_TOKEN (admin, actor ``api``);
    with neither set, one generated under ``.data/api_token`` (the embedded default). Bodies
    are bounded by MAX_REQUEST_BYTES. Raises ConfigError when DATA_MAP_PATH is set and the
    data map is invalid; startup raises it for an invalid API_TOKENS_FILE.
    """
    settings = settings or Settings()
    if settings.data_map_path:
        load_datamap(settings.data_map_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.api_token is None and settings.api_tokens_file is not None:
            api_token = None  # named tokens only: no generated admin token
        else:
            api_token = settings.secret("api_token")
        app.state.tokens = TokenRegistry.load(api_token, settings.api_tokens_file)
        own = client is None
        app.state.lifecycle = client or await LifecycleClient.connect(settings)
        try:
            yield
        finally:
            if own:
                await app.state.lifecycle.close()

    # FastAPIOffline: /docs and /redoc with Swagger UI and ReDoc served from the package
    # (static files under /static-offline-docs), so the pages render with no internet.
    app = FastAPIOffline(
        title="Tenant Lifecycle",
        version="0.1.0",
        summary="Durable tenant lifecycle operations on Temporal",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(
        Guard,
        max_body=settings.max_request_bytes,
        body_timeout=settings.api_header_timeout_seconds,
    )
    tenant_errors = (400, 401, 403, 404, 408, 409, 413, 422, 503)
    documented = {
        tenants: tenant_errors,
        plan_changes: tenant_errors,
        suspension: tenant_errors,
        reactivation: tenant_errors,
        deletion: tenant_errors,
        exports: (*tenant_errors, 410),
        certificates: (503,),
        compat: tenant_errors,
        billing_events: (400, 408, 413, 503),
        reconciliation: (400, 401, 403, 404, 408, 413, 422, 503),
        plan_migrations: tenant_errors,
        meta: (400, 401, 403, 404, 422, 503),
        events: (400, 401, 403, 404, 408, 409, 413, 422, 503),
    }
    for module, statuses in documented.items():
        app.include_router(module.router, responses=problem_responses(*statuses))
    # The tenant console (/console): HTML pages with cookie sessions, not in OpenAPI.
    app.include_router(console.router)
    app.mount("/console/static", StaticFiles(packages=[("lifecycle.console", "static")]))
    _document(app, [plan.name for plan in settings.plans.plans])
    return app


def _document(app: FastAPI, names: list[str]) -> None:
    """Complete the OpenAPI document: the ``Problem`` schema of the error responses, and the
    plans of the catalogue (PLANS_PATH) as the ``enum`` of every ``plan``, ``to_plan`` and
    ``new_plan`` field and query parameter."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        problems.document_problem(schema)
        for model in schema.get("components", {}).get("schemas", {}).values():
            for name, prop in model.get("properties", {}).items():
                if name in ("plan", "to_plan", "new_plan"):
                    _set_enum(prop, names)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for param in operation.get("parameters", []):
                    if param.get("name") in ("plan", "to_plan"):
                        _set_enum(param["schema"], names)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _set_enum(prop: dict[str, Any], names: list[str]) -> None:
    """Restrict a string schema (or the string branch of a nullable one) to ``names``."""
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "string":
            branch["enum"] = names
