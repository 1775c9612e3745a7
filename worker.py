"""Temporal worker: registers every lifecycle workflow and activity.

Run ``python worker.py`` (or ``tenantctl worker``); configuration from the environment (see
``.env.example``). Any number of worker processes may run against one task queue.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from temporalio.activity import _Definition
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.billing import BillingActivities, make_stripe_client
from activities.exports import ExportActivities
from activities.tenants import TenantActivities
from lifecycle.client import connect_temporal
from lifecycle.config import Settings
from lifecycle.datamap import load_datamap
from lifecycle.db import create_engine, migrate, sessionmaker
from lifecycle.export.records import ExportRepository
from lifecycle.export.storage import ExportStorage, s3_options
from lifecycle.repository import TenantRepository
from workflows.export import ExportRetentionWorkflow, ExportWorkflow
from workflows.onboarding import OnboardingWorkflow

WORKFLOWS = [OnboardingWorkflow, ExportWorkflow, ExportRetentionWorkflow]
#: Modules pydantic loads lazily while validating workflow inputs (EmailStr): pass them
#: through the sandbox like the models that use them.
PASSTHROUGH_MODULES = ("email_validator", "idna")


def activity_methods(*owners: object) -> list[Callable[..., Any]]:
    """Every ``@activity.defn`` method of the given activity objects, bound."""
    methods = []
    for owner in owners:
        for name in dir(type(owner)):
            attr = getattr(owner, name)
            # the SDK's own lookup of the definition @activity.defn attached
            if callable(attr) and _Definition.from_callable(attr) is not None:
                methods.append(attr)
    return methods


def build_activities(settings: Settings, repository: TenantRepository) -> list[Callable[..., Any]]:
    """Every activity, wired to the real clients named in ``settings``.

    Raises ConfigError when DATA_MAP_PATH is set and the data map is invalid.
    """
    stripe_key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
    datamap = load_datamap(settings.data_map_path) if settings.data_map_path else None
    return activity_methods(
        TenantActivities(repository),
        BillingActivities(make_stripe_client(stripe_key, settings.stripe_api_base)),
        ExportActivities(
            ExportStorage.from_settings(settings),
            ExportRepository(repository.sessions),
            datamap,
            s3_options(settings),
        ),
    )


def build_worker(
    client: Client, settings: Settings, repository: TenantRepository, **options: object
) -> Worker:
    """The worker for ``settings.temporal_task_queue``; MAX_CONCURRENT_LIFECYCLE_JOBS bounds
    the activities running at once."""
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=WORKFLOWS,
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH_MODULES)
        ),
        activities=build_activities(settings, repository),
        max_concurrent_activities=settings.max_concurrent_lifecycle_jobs,
        **options,  # type: ignore[arg-type]
    )


async def run_worker(settings: Settings) -> None:
    """Migrate the control-plane database, connect and poll until cancelled."""
    engine = create_engine(settings.db_url)
    await migrate(engine)
    client = await connect_temporal(settings)
    worker = build_worker(client, settings, TenantRepository(sessionmaker(engine)))
    logging.getLogger(__name__).info(
        "worker polling task queue %s on %s", settings.temporal_task_queue, settings.temporal_target
    )
    try:
        await worker.run()
    finally:
        await engine.dispose()


if __name__ == "__main__":
    _settings = Settings()
    logging.basicConfig(level=_settings.log_level)
    asyncio.run(run_worker(_settings))
