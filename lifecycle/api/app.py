"""The API app: one FastAPI application with a router per feature and problem+json errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lifecycle.api import problems
from lifecycle.api.routes import (
    billing_events,
    certificates,
    deletion,
    exports,
    meta,
    plan_changes,
    reactivation,
    reconciliation,
    suspension,
    tenants,
)
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.storage.datamap import load_datamap


def create_app(settings: Settings | None = None, client: LifecycleClient | None = None) -> FastAPI:
    """The API app. Without ``client`` it connects (and migrates) on startup.

    The bearer token is API_TOKEN, or in dev mode one generated under ``.data/api_token``.
    Raises ConfigError when DATA_MAP_PATH is set and the data map is invalid.
    """
    settings = settings or Settings()
    if settings.data_map_path:
        load_datamap(settings.data_map_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.api_token = settings.secret("api_token")
        own = client is None
        app.state.lifecycle = client or await LifecycleClient.connect(settings)
        try:
            yield
        finally:
            if own:
                await app.state.lifecycle.close()

    app = FastAPI(
        title="Tenant Lifecycle",
        version="0.1.0",
        summary="Durable tenant lifecycle operations on Temporal",
        lifespan=lifespan,
    )
    problems.install(app)
    features = (
        tenants,
        plan_changes,
        suspension,
        reactivation,
        exports,
        deletion,
        certificates,
        billing_events,
        reconciliation,
    )
    for module in (*features, meta):
        app.include_router(module.router)
    return app
