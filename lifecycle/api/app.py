"""The API app: one FastAPI application with a router per feature and problem+json errors."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from lifecycle.api import problems
from lifecycle.api.auth import TokenRegistry
from lifecycle.api.guard import Guard
from lifecycle.api.routes import (
    billing_events,
    deletion,
    exports,
    meta,
    plan_changes,
    reactivation,
    suspension,
    tenants,
)
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
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

    app = FastAPI(
        title="Tenant Lifecycle",
        version="0.1.0",
        summary="Durable tenant lifecycle operations on Temporal",
        lifespan=lifespan,
    )
    problems.install(app)
    app.add_middleware(Guard, max_body=settings.max_request_bytes)
    features = (tenants, plan_changes, suspension, reactivation, exports, deletion, billing_events)
    for module in (*features, meta):
        app.include_router(module.router)
    return app
