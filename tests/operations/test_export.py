"""Export workflow end to end: states, audit, API over HTTP, archive checksum and manifest,
signed links, retention, failures.

Exports run on the dev server: a completed export leaves a 30-day retention timer behind,
and on the shared time-skipping server a timer firing for a stopped worker would stall time
skipping for every later test. Only the retention test uses time skipping, and it waits for
its own timer to fire.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from lifecycle.domain.operations import LIFECYCLE_OPERATION, TENANT_ID
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import TransitionInput
from tests.support.export_helpers import (
    make_app,
    notes,
    projects,
    read_archive,
    source_rows,
    table_rows,
)
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import new_tenant, skip_to_result


async def wait_export(http: httpx.AsyncClient, export_id: str) -> dict[str, Any]:
    for _ in range(600):
        view = (await http.get(f"/exports/{export_id}")).json()
        if view["status"] in ("completed", "failed"):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"export {export_id} did not finish: {view}")


async def test_export_over_http_round_trip(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    app = await make_app(tmp_path)
    settings = make_settings(tmp_path, data_map_path=app.datamap, data_export_chunk_size_mb=0.002)
    tenant = uid("exp")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, tenant, data_key="1")
        response = await http.post(f"/tenants/{tenant}/exports", json={"export_type": "full"})
        assert response.status_code == 202, response.text
        started = response.json()
        assert started["status"] == "queued" and started["estimated_completion"]
        assert started["workflow_id"] == f"tenant-{tenant}-export-{started['export_id']}"

        view = await wait_export(http, started["export_id"])
        assert view["status"] == "completed", view
        assert view["progress"]["chunks_done"] == view["progress"]["chunks_total"] > 3
        # one activity per chunk, the tables split in several
        history = await lc.core.handle(started["workflow_id"]).fetch_history()
        chunk_activities = [
            e.activity_task_scheduled_event_attributes
            for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")
            and e.activity_task_scheduled_event_attributes.activity_type.name == "export_chunk"
        ]
        assert len(chunk_activities) == view["progress"]["chunks_done"]
        download = await http.get(view["download_url"])
        assert download.status_code == 200
        assert hashlib.sha256(download.content).hexdigest() == view["sha256"]
        assert len(download.content) == view["size_bytes"]

        manifest, archive = read_archive(download.content)
        assert manifest["tenant_id"] == tenant and manifest["export_id"] == started["export_id"]
        by_path = {f["path"]: f for f in manifest["files"]}
        rows: Counter[str] = Counter()
        for entry in manifest["files"]:
            rows[entry["store"]] += entry.get("rows", 0)
        assert rows == {"app.projects": 12, "app.notes": 36, "storage[0]": 0}
        # tables of more than one chunk are split into key ranges exported at once
        assert {f.get("parts") for f in manifest["files"] if "rows" in f} - {None}
        assert table_rows(archive, projects, "app.projects") == source_rows(1, 12)
        note_rows = table_rows(archive, notes, "app.notes")
        assert {r["project_id"] for r in note_rows} == {1000 + i for i in range(12)}
        files = sorted(p for p in by_path if p.startswith("files/"))
        assert files == [f"files/0/img/{i}.bin" for i in range(3)]
        assert archive.read("files/0/img/2.bin") == b"\x01" * 3000

        tenant_view = await lc.get_tenant(tenant)
        assert tenant_view.state == "ACTIVE"
        events = [
            (e.operation, e.from_state, e.to_state) for e in await lc.repository.events(tenant)
        ]
        assert events[-2:] == [("export", "ACTIVE", "EXPORTING"), ("export", "EXPORTING", "ACTIVE")]
        listed = (await http.get(f"/tenants/{tenant}/exports")).json()
        assert [e["export_id"] for e in listed] == [started["export_id"]]
        # staging is gone once the archive exists
        assert not (settings.exports_dir / "staging" / tenant / started["export_id"]).exists()


async def test_signed_links(dev_env: WorkflowEnvironment, tmp_path: Path) -> None:
    app = await make_app(tmp_path, projects_per_org=3)
    settings = make_settings(tmp_path, data_map_path=app.datamap, export_retention_days=30)
    tenant = uid("link")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, tenant, data_key="2")
        export_id = (await lc.exports.export_tenant(tenant, "tables")).export_id
        view = await wait_export(http, export_id)
        url = httpx.URL(view["download_url"])
        expires = int(url.params["expires"])
        # valid for 7 days from now (EXPORT_LINK_TTL_DAYS), not longer
        assert abs(expires - (time.time() + 7 * 86400)) < 60
        async with httpx.AsyncClient() as anonymous:  # the signature is the authorisation
            ok = await anonymous.get(url)
            assert ok.status_code == 200
            assert hashlib.sha256(ok.content).hexdigest() == view["sha256"]
            manifest, _ = read_archive(ok.content)
            assert [f["path"] for f in manifest["files"]] == [
                "tables/app.projects.jsonl",
                "tables/app.notes.jsonl",
            ]  # "tables" exports leave the files out

            tampered = url.copy_set_param("expires", str(expires + 3600))
            response = await anonymous.get(tampered)
            assert response.status_code == 403
            assert response.headers["content-type"] == "application/problem+json"
            forged = url.copy_set_param("signature", "0" * 64)
            assert (await anonymous.get(forged)).status_code == 403

            past = int(time.time()) - 10
            expired_sig = lc.exports.storage.signature(export_id, past)
            expired = url.copy_merge_params({"expires": str(past), "signature": expired_sig})
            response = await anonymous.get(expired)
            assert response.status_code == 410
            assert "expired" in response.json()["detail"]


async def test_retention_deletes_the_archive(time_env: WorkflowEnvironment, tmp_path: Path) -> None:
    app = await make_app(tmp_path, projects_per_org=2)
    settings = make_settings(tmp_path, data_map_path=app.datamap, export_retention_days=30)
    tenant = uid("keep")
    async with running_stack(time_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, tenant, data_key="1")
        started = await lc.exports.export_tenant(tenant)
        view = await wait_export(http, started.export_id)
        assert view["status"] == "completed"
        created = datetime.fromisoformat(view["created_at"])
        retained = datetime.fromisoformat(view["archive_expires_at"])
        assert timedelta(days=29) < retained - created < timedelta(days=31)
        archive = settings.exports_dir / "archives" / tenant / f"{started.export_id}.zip"
        assert archive.is_file()
        # the export workflow reports "completed" before it starts the retention timer as an
        # abandoned child: wait for the export's result, then skip time to the child's
        await skip_to_result(time_env, lc.core.handle(started.workflow_id))
        child = lc.core.handle(f"{started.workflow_id}-retention")
        described = await child.describe()
        assert described.status == WorkflowExecutionStatus.RUNNING
        # filterable with TenantId="<tenant>" in the Web UI, like the export itself
        attributes = described.typed_search_attributes
        assert attributes.get(TENANT_ID) == tenant
        assert attributes.get(LIFECYCLE_OPERATION) == "export"
        removed = await skip_to_result(time_env, child)
        assert removed == 2  # the archive and its sidecar
        assert not archive.exists()
        assert (await lc.exports.get_export(started.export_id)).status == "expired"
        assert (await http.get(view["download_url"])).status_code == 410


async def test_export_rejections_and_failure_returns_active(
    time_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path, projects_per_org=2)
    settings = make_settings(tmp_path, data_map_path=app.datamap)
    tenant = uid("fail")
    async with running_stack(time_env, settings) as lc, serve_api(lc) as http:
        missing = await http.post("/tenants/nobody-here/exports", json={})
        assert missing.status_code == 404
        await new_tenant(lc, tenant, data_key="1")
        bad_type = await http.post(f"/tenants/{tenant}/exports", json={"export_type": "all"})
        assert bad_type.status_code == 422

        # a table the data map names disappears from the live database: the plan fails
        app.datamap.write_text(app.datamap.read_text().replace('"notes"', '"gone"'))
        # (the worker loaded the map at startup; rebuild the stack to pick up the new one)
    async with running_stack(time_env, settings) as lc, serve_api(lc) as http:
        export_id = (await http.post(f"/tenants/{tenant}/exports", json={})).json()["export_id"]
        view = await wait_export(http, export_id)
        assert view["status"] == "failed"
        assert "unknown table 'gone'" in view["error"]
        assert view["download_url"] is None
        assert (await lc.get_tenant(tenant)).state == "ACTIVE"
        events = [(e.from_state, e.to_state) for e in await lc.repository.events(tenant)]
        assert events[-2:] == [("ACTIVE", "EXPORTING"), ("EXPORTING", "ACTIVE")]

        await lc.repository.transition(
            TransitionInput(
                tenant_id=tenant,
                from_states=[TenantState.ACTIVE],
                to_state=TenantState.SUSPENDED,
                operation="suspend",
                workflow_id="test",
            )
        )
        conflict = await http.post(f"/tenants/{tenant}/exports", json={})
        assert conflict.status_code == 409
        assert "is SUSPENDED" in conflict.json()["detail"]


async def test_export_refuses_a_data_key_another_live_tenant_holds(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """Defence in depth behind the unique index: two live tenants sharing key "1" (as a
    duplicate left from before migration 0003 looks). The API answers 409 naming the holder;
    the workflow itself, started directly, fails at planning and writes no archive."""
    from sqlalchemy import update

    from lifecycle.domain.exports import ExportInput
    from lifecycle.domain.operations import OperationKind
    from lifecycle.persistence.tables import Tenant
    from workflows.export import ExportWorkflow

    app = await make_app(tmp_path)
    settings = make_settings(tmp_path, data_map_path=app.datamap)
    holder, intruder = uid("holder"), uid("intruder")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, holder, data_key="1")
        await new_tenant(lc, intruder, data_key="elsewhere")
        async with lc.repository.sessions.begin() as session:
            await session.execute(
                update(Tenant)
                .where(Tenant.id == intruder)
                .values(data_key="1", data_key_canonical=None)
            )
        response = await http.post(f"/tenants/{intruder}/exports", json={})
        assert response.status_code == 409
        assert f"data key '1' is held by tenant '{holder}'" in response.json()["detail"]

        export_id = "d1" * 16  # an export id as the API makes them: 32 hex digits
        await lc.exports.records.create(
            export_id=export_id,
            tenant_id=intruder,
            workflow_id=f"tenant-{intruder}-export-{export_id}",
            export_type="full",
            requested_by="test",
            estimated_completion=datetime.now().astimezone(),
        )
        started = await lc.core.start(
            ExportWorkflow.run,
            ExportInput(
                tenant_id=intruder, export_id=export_id, chunk_bytes=1 << 20, retention_days=1
            ),
            tenant_id=intruder,
            kind=OperationKind.EXPORT,
            suffix=export_id,
        )
        view = await wait_export(http, export_id)
        assert view["status"] == "failed"
        assert f"held by tenant '{holder}'" in view["error"]
        assert (await lc.get_tenant(intruder)).state is TenantState.ACTIVE
        assert not list((settings.exports_dir / "archives").rglob("*.zip"))
        assert started.workflow_id.endswith(export_id)


async def test_full_export_holds_the_tenants_cache_entries_when_the_map_says_so(
    dev_env: WorkflowEnvironment, tmp_path: Path, redis_url: str
) -> None:
    """Issue 13, item 3: a ``[[cache]]`` entry with ``export = true`` adds the tenant's keys
    to a full export as JSON Lines (key, type, value, TTL); key ``1*`` of another tenant and
    the keys of org 12 never come along; a ``tables`` export holds no cache."""
    redis = Redis.from_url(redis_url)
    for org in ("1", "12", "1*"):
        await redis.set(f"app:{org}:profile", f"name of {org}", ex=3600)
        await redis.hset(f"app:{org}:stats", mapping={"clicks": "3"})
        await redis.rpush(f"app:{org}:recent", "a", "b")
    await redis.aclose()
    app = await make_app(tmp_path, projects_per_org=2)
    with app.datamap.open("a", encoding="utf-8") as f:
        f.write(f'\n[[cache]]\nurl = "{redis_url}"\npatterns = ["app:{{tenant_key}}:*"]\n')
        f.write("export = true\n")
    settings = make_settings(tmp_path, data_map_path=app.datamap)
    tenant = uid("cached")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, tenant, data_key="1")
        full = await wait_export(http, (await lc.exports.export_tenant(tenant)).export_id)
        async with httpx.AsyncClient() as anonymous:
            manifest, archive = read_archive((await anonymous.get(full["download_url"])).content)
        (entry,) = [e for e in manifest["files"] if e["path"] == "cache/0.jsonl"]
        assert entry["store"] == "cache[0]" and entry["keys"] == 3 and "rows" not in entry
        records = {r["key"]: r for r in map(json.loads, archive.read("cache/0.jsonl").splitlines())}
        assert set(records) == {"app:1:profile", "app:1:stats", "app:1:recent"}
        assert records["app:1:profile"]["value"] == "name of 1"
        assert 0 < records["app:1:profile"]["ttl"] <= 3600
        assert records["app:1:stats"] == {
            "key": "app:1:stats",
            "type": "hash",
            "value": {"clicks": "3"},
            "ttl": None,
        }
        assert records["app:1:recent"]["value"] == ["a", "b"]

        tables = await lc.exports.export_tenant(tenant, "tables")
        view = await wait_export(http, tables.export_id)
        async with httpx.AsyncClient() as anonymous:
            manifest, _ = read_archive((await anonymous.get(view["download_url"])).content)
        assert not any(e["path"].startswith("cache/") for e in manifest["files"])
