"""The specification's function-style calls (``from lifecycle import upgrade_tenant, ...``)
against a real stack: the Temporal dev server, a worker and the control-plane database of
``running_stack``; each call connects on its own from the settings, as a user's script does.
Called from the test's event loop (as from a Jupyter cell: the call runs on a thread of its
own) and from a thread without one (``asyncio.run``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.testing import WorkflowEnvironment

import lifecycle
from lifecycle import (
    delete_tenant,
    downgrade_tenant,
    export_tenant_data,
    reactivate_tenant,
    upgrade_tenant,
)
from lifecycle.domain.errors import InvalidInput, StateConflict, TenantNotFound
from lifecycle.domain.states import TenantState
from tests.support.export_helpers import make_app
from tests.support.fixtures import make_settings, running_stack, uid
from tests.support.tenant_data import new_tenant, wait_state


async def test_function_style_calls_run_the_lifecycle(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path)
    settings = make_settings(
        tmp_path,
        data_map_path=app.datamap,
        temporal_address=dev_env.client.service_client.config.target_host,
    )
    tenant = uid("calls")
    async with running_stack(dev_env, settings) as lc:
        await new_tenant(lc, tenant, "starter", data_key="2")

        started = upgrade_tenant(tenant, "professional", settings=settings)
        assert started["workflow_id"] == f"tenant-{tenant}-upgrade"
        assert await lc.core.handle(started["workflow_id"]).result()
        assert (await lc.get_tenant(tenant)).plan == "professional"

        started = await asyncio.to_thread(
            downgrade_tenant,
            tenant_data={"tenant_id": tenant, "plan": "professional"},
            new_plan="starter",
            effective="immediately",
            settings=settings,
        )
        assert started["effective"] == "immediately"
        await lc.core.handle(started["workflow_id"]).result()
        assert (await lc.get_tenant(tenant)).plan == "starter"

        export = export_tenant_data(tenant_id=tenant, export_type="full", settings=settings)
        assert {"export_id", "status", "estimated_completion"} <= export.keys()
        await lc.core.handle(export["workflow_id"]).result()
        view = await lc.exports.get_export(export["export_id"])
        assert view.status == "completed" and view.sha256 and view.size_bytes

        deletion = delete_tenant(tenant_id=tenant, retention_days=45, settings=settings)
        assert deletion["deletion_id"] and deletion["can_reactivate"] is True
        assert deletion["retention_days"] == 45
        row = await wait_state(lc, tenant, TenantState.DELETED)
        assert row.purge_scheduled_at is not None
        assert row.purge_scheduled_at.isoformat() == deletion["hard_delete_scheduled_at"]
        events = await lc.events(tenant)
        assert {e.actor for e in events if e.operation == "deletion"} == {"python"}

        # a deleted tenant's reactivation is an update the worker answers: the worker shares
        # this test's event loop, so the blocking call runs on a thread
        await asyncio.to_thread(reactivate_tenant, tenant, settings=settings)
        assert (await wait_state(lc, tenant, TenantState.ACTIVE)).plan == "starter"


async def test_function_style_calls_raise_the_domain_errors(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    settings = make_settings(
        tmp_path, temporal_address=dev_env.client.service_client.config.target_host
    )
    tenant = uid("calls")
    async with running_stack(dev_env, settings) as lc:
        await new_tenant(lc, tenant, "professional")
        with pytest.raises(TenantNotFound, match="tenant 'nobody-here' does not exist"):
            upgrade_tenant("nobody-here", "enterprise", settings=settings)
        with pytest.raises(InvalidInput):
            upgrade_tenant(tenant, "starter", settings=settings)
        with pytest.raises(StateConflict, match=f"tenant '{tenant}' is ACTIVE"):
            reactivate_tenant(tenant, settings=settings)
        with pytest.raises(ValidationError, match="tenant_id"):
            export_tenant_data("Bad_Id", settings=settings)
        with pytest.raises(ValidationError, match="retention_days"):
            delete_tenant(tenant, retention_days=7, settings=settings)
        with pytest.raises(ValidationError, match="differ"):
            upgrade_tenant(tenant, "enterprise", {"tenant_id": "other-co"}, settings=settings)
        assert (await lc.get_tenant(tenant)).plan == "professional"
    with pytest.raises(AttributeError, match="no attribute 'purge_everything'"):
        _ = lifecycle.purge_everything  # type: ignore[attr-defined]
