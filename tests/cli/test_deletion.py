"""The ``temporal`` CLI's signal reactivates a soft-deleted tenant exactly like the API, on
the Temporal dev server (real time: the 30-day timer is simply cut short by the signal)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from lifecycle.dev.devserver import temporal_cli
from lifecycle.domain.deletion import DeleteRequest
from lifecycle.domain.states import TenantState
from tests.support.fixtures import make_settings, running_stack, uid
from tests.support.tenant_data import new_tenant, wait_state


async def temporal(env: WorkflowEnvironment, *args: str) -> str:
    """Run the real ``temporal`` binary against the dev server; return its stdout."""
    address = env.client.service_client.config.target_host
    proc = await asyncio.create_subprocess_exec(
        temporal_cli(),
        *args,
        "--address",
        address,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_cli_signal_reactivates_deleted_tenant(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    async with running_stack(dev_env, make_settings(tmp_path)) as lc:
        acme = uid("acme")
        await new_tenant(lc, acme, "professional")
        started = await lc.deletion.delete_tenant(acme, DeleteRequest(requested_by="dpo@acme.io"))
        wid = started.workflow_id
        assert wid == f"tenant-{acme}-deletion"
        await wait_state(lc, acme, TenantState.DELETED)

        await temporal(
            dev_env,
            "workflow",
            "signal",
            "--workflow-id",
            wid,
            "--name",
            "reactivate",
            "--input",
            json.dumps({"plan": "starter", "requested_by": "ops@cli"}),
        )
        result = await lc.core.handle(wid).result()
        assert result["outcome"] == "reactivated" and result["plan"] == "starter"
        tenant = await lc.get_tenant(acme)
        assert tenant.state is TenantState.ACTIVE and tenant.plan == "starter"
        assert tenant.entitlements == lc.settings.plans.get("starter").limits.as_dict()
        events = await lc.repository.events(acme)
        assert [(e.to_state, e.actor) for e in events[-2:]] == [
            ("REACTIVATING", "ops@cli"),
            ("ACTIVE", "ops@cli"),
        ]
        described = json.loads(
            await temporal(dev_env, "workflow", "describe", "--workflow-id", wid, "-o", "json")
        )
        assert described["workflowExecutionInfo"]["status"].endswith("COMPLETED")
