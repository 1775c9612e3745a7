"""/metrics series exist and move with operations; /status."""

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from lifecycle.persistence.tables import DeletionCertificate, Export, utcnow
from tests.support.fixtures import make_settings, running_stack, serve_api, uid


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        yield http


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def scrape(api: httpx.AsyncClient) -> dict:
    async with httpx.AsyncClient(base_url=str(api.base_url)) as anon:  # no token needed
        r = await anon.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return samples(r.text)


async def test_metrics_series_present_and_changing(api: httpx.AsyncClient) -> None:
    before = await scrape(api)
    for state in ("ACTIVE", "SUSPENDED", "DELETED"):
        assert before[("lifecycle_tenants", (("state", state),))] == 0
    tenant = uid("metrics")
    r = await api.post("/tenants", json={"tenant_id": tenant, "name": "M", "email": "m@m.io"})
    wid = r.json()["workflow_id"]
    for _ in range(200):
        if (await api.get(f"/operations/{wid}")).json()["status"] == "completed":
            break
    after = await scrape(api)
    op = (("operation", "onboard"),)
    assert after[("lifecycle_operations_started_total", op)] == 1
    done = (("operation", "onboard"), ("outcome", "completed"))
    assert after[("lifecycle_operations_finished_total", done)] == 1
    assert after[("lifecycle_operations_running", op)] == 0
    assert after[("lifecycle_operation_duration_seconds_count", op)] == 1
    assert after[("lifecycle_operation_duration_seconds_bucket", (("le", "+Inf"), *op))] == 1
    assert after[("lifecycle_operation_duration_seconds_sum", op)] > 0
    assert after[("lifecycle_tenants", (("state", "ACTIVE"),))] == 1

    status = (await api.get("/status")).json()
    assert status["tenants_by_state"] == {"ACTIVE": 1}
    assert status["running_operations"] == {} and status["purges_due_7d"] == []


async def test_metrics_disabled(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, enable_metrics=False)
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        assert (await http.get("/metrics")).status_code == 404


async def test_export_bytes_and_purged_rows_series(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The series read the exports table and the deletion certificates: rows as the export
    and purge workflows write them move the counters."""
    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        before = await scrape(http)
        assert before[("lifecycle_export_bytes_total", ())] == 0
        assert before[("lifecycle_purged_rows_total", ())] == 0
        now = utcnow()
        async with lc.repository.sessions.begin() as session:
            for export_id, status, size in (("e1", "completed", 1234), ("e2", "failed", 99)):
                session.add(
                    Export(
                        export_id=export_id,
                        tenant_id="t",
                        workflow_id="w",
                        export_type="full",
                        status=status,
                        progress={},
                        size_bytes=size,
                        requested_by="api",
                        created_at=now,
                    )
                )
            session.add(
                DeletionCertificate(
                    tenant_id="gone",
                    workflow_id="w",
                    sha256="0" * 64,
                    signature="0" * 64,
                    created_at=now,
                    document={
                        "stores": {
                            "app.a": {"before": {"rows": 40}, "after": {"rows": 0}},
                            "app.b": {"before": {"rows": 2}, "after": {"rows": 0}},
                            "storage[0]": {"before": {"files": 3, "bytes": 9}, "after": {}},
                        }
                    },
                )
            )
        after = await scrape(http)
    assert after[("lifecycle_export_bytes_total", ())] == 1234
    assert after[("lifecycle_purged_rows_total", ())] == 42


async def test_a_second_suspension_adds_a_run_and_the_counters_only_grow(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """A re-run under the reused id ``tenant-<id>-suspend`` used to overwrite the first run's
    row: finished counts went down and ``/operations/{id}`` showed only the latest run."""
    from tests.support.tenant_data import new_tenant

    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as api:
        acme = uid("acme")
        await new_tenant(lc, acme, "starter")
        finished = []
        for step, body in (
            ("suspend", {"reason": "first"}),
            ("reactivate", None),
            ("suspend", {"reason": "second"}),
        ):
            r = await api.post(f"/tenants/{acme}/{step}", json=body)
            assert r.status_code == 202, r.text
            await lc.core.handle(r.json()["workflow_id"]).result()
            done = (("operation", step), ("outcome", "completed"))
            finished.append((await scrape(api))[("lifecycle_operations_finished_total", done)])
        metrics = await scrape(api)
        wid = f"tenant-{acme}-suspend"
        latest = (await api.get(f"/operations/{wid}")).json()
        listing = (await api.get(f"/tenants/{acme}/operations")).json()
        unknown = await api.get("/tenants/nobody-here/operations")
    assert finished == [1, 1, 2]
    assert metrics[("lifecycle_operations_started_total", (("operation", "suspend"),))] == 2
    assert latest["status"] == "completed" and len(latest["runs"]) == 2
    assert latest["run_id"] == latest["runs"][0]["run_id"] != latest["runs"][1]["run_id"]
    assert [run["status"] for run in latest["runs"]] == ["completed", "completed"]
    assert listing["total"] == 3
    assert [(o["kind"], o["workflow_id"]) for o in listing["items"]] == [
        ("suspend", wid),
        ("reactivate", f"tenant-{acme}-reactivate"),
        ("suspend", wid),
    ]
    assert unknown.status_code == 404
