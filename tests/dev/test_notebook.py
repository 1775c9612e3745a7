"""``notebooks/tenant_lifecycle.ipynb`` executed by a real Jupyter kernel (nbclient +
ipykernel) against the tests' stack (the Temporal dev server, a worker, the API over HTTP on
the port the notebook reads from the environment, the sample application): every cell runs
and the outputs show each step's real outcome."""

from __future__ import annotations

import uuid
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from temporalio.testing import WorkflowEnvironment

from lifecycle.dev.adtech.sample import load_sample
from lifecycle.dev.devserver import free_port
from lifecycle.dev.stack import sample_application_env
from tests.support.fixtures import make_settings, running_stack, serve_api
from tests.support.tenant_data import new_tenant

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "tenant_lifecycle.ipynb"
#: Seconds one cell may take; the whole notebook runs in well under 2 minutes.
CELL_TIMEOUT = 90


def outputs(nb: nbformat.NotebookNode) -> str:
    """The text every code cell printed or displayed, joined."""
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


@pytest.mark.parametrize("onboarded", [False, True], ids=["fresh", "after-make-run"])
async def test_notebook_walks_the_lifecycle(
    own_dev_env: WorkflowEnvironment,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    onboarded: bool,
) -> None:
    """``onboarded``: every sample company is a tenant already, as after ``make run``'s main
    job; the notebook then takes the first ACTIVE one it can upgrade."""
    for var in ("APP_DATABASE_URL", "APP_STORAGE_URL", "DATA_MAP_PATH"):
        monkeypatch.delenv(var, raising=False)
    settings = make_settings(
        tmp_path,
        temporal_address=own_dev_env.client.service_client.config.target_host,
        api_port=free_port(),
    )
    # what the kernel inherits: the same stack as these settings, found from the environment
    env = {
        "DATA_DIR": str(settings.data_dir),
        "TEMPORAL_ADDRESS": settings.temporal_target,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "API_PORT": str(settings.api_port),
        "API_TOKEN": "test-token",
        "SIGNING_SECRET": "test-signing-secret",
        **sample_application_env(settings),
    }
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    # small and quick; a seed of its own, so that no earlier test on the shared dev server
    # onboarded companies of the same names (their workflow ids would conflict)
    seed = uuid.uuid4().int % 10**6
    companies = await load_sample(settings.data_dir, tenants=4, size_mb=1, seed=seed)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    async with running_stack(own_dev_env, settings) as lc, serve_api(lc, settings.api_port):
        if onboarded:
            for company in companies:
                await new_tenant(lc, company.tenant_id, "starter", data_key=company.data_key)
        client = NotebookClient(
            nb,
            timeout=CELL_TIMEOUT,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        )
        await client.async_execute()
        tenant = await lc.get_tenant(companies[0].tenant_id)
    text = outputs(nb)
    first = companies[0]
    if onboarded:
        assert f"every company is a tenant already: taking {first.tenant_id}" in text, text
    assert f"onboarded: {first.tenant_id} is ACTIVE on starter" in text, text
    assert f"upgraded: {first.tenant_id} is ACTIVE on professional" in text, text
    assert "SHA-256 verified: True" in text and "row counts match the application: True" in text
    assert "soft deleted: DELETED" in text, text
    assert f"reactivated: {first.tenant_id} is ACTIVE on professional" in text, text
    assert "purge: completed" in text, text
    assert "valid True" in text, text
    assert "-> 0, files after: 0" in text, text
    assert tenant.purged_at is not None
