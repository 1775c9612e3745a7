"""Thin FastAPI app: starts workflows, sends signals and reads state through the
:class:`~lifecycle.client.lifecycle.LifecycleClient`. Run with ``uvicorn starter_api:app``,
``tenantctl api`` or ``tenantctl dev``; the app itself is :func:`lifecycle.api.app.create_app`."""

from lifecycle.api.app import create_app

app = create_app()
