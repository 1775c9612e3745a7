"""A small SaaS application for export tests: two tables (one reached through its parent),
tenant files on disk, a data map pointing at them, and tenants in the control plane."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    Text,
)
from temporalio.client import Client
from temporalio.worker import Worker

from activities.exports import ExportActivities
from activities.tenants import TenantActivities
from lifecycle.config import Settings
from lifecycle.persistence.engine import create_engine
from lifecycle.persistence.exports import ExportRepository
from lifecycle.persistence.tenants import TenantRepository
from lifecycle.storage.datamap import load_datamap
from lifecycle.storage.exports import ExportStorage
from lifecycle.storage.jsonl import decode_row
from tests.support.datamaps import two_table_datamap
from worker import WORKFLOWS, LifecycleWorker, assembly_worker, workflow_runner

metadata = MetaData()
projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("org_id", Integer, nullable=False, index=True),
    Column("title", Text),
    Column("budget", Numeric(12, 2)),
    Column("created", DateTime(timezone=False)),
    Column("logo", LargeBinary),
)
notes = Table(
    "notes",
    metadata,
    Column("project_id", Integer, ForeignKey("projects.id"), primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("body", Text),
    Column("tag", String(20)),
)


@dataclass
class App:
    url: str
    files: Path
    datamap: Path


def project_row(i: int, org: int) -> dict[str, Any]:
    return {
        "id": i,
        "org_id": org,
        "title": f"projet «{i}» " + "x" * (i % 7) * 40,
        "budget": Decimal(f"{i}.{i % 100:02d}"),
        "created": datetime(2026, 1, 1) + timedelta(minutes=i),
        "logo": bytes([i % 256, 0, 255]) if i % 3 else None,
    }


async def make_app(
    tmp_path: Path, url: str | None = None, projects_per_org: int = 12, files_per_org: int = 3
) -> App:
    """Create the app's tables with orgs 1 and 2 (``projects_per_org`` each, 3 notes per
    project) and files under ``files/<org>/``; write the data map."""
    url = url or f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(metadata.drop_all)
        await conn.run_sync(metadata.create_all)
        rows = [project_row(org * 1000 + i, org) for org in (1, 2) for i in range(projects_per_org)]
        await conn.execute(projects.insert(), rows)
        await conn.execute(
            notes.insert(),
            [
                {"project_id": r["id"], "seq": s, "body": "note ✓ " * s, "tag": None}
                for r in rows
                for s in range(3)
            ],
        )
    await engine.dispose()
    files = tmp_path / "files"
    for org in (1, 2):
        for i in range(files_per_org):
            path = files / str(org) / "img" / f"{i}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(bytes([org]) * (1000 * (i + 1)))
    datamap = tmp_path / "datamap.toml"
    datamap.write_text(two_table_datamap(url, str(files)), encoding="utf-8")
    return App(url, files, datamap)


def read_archive(data: bytes) -> tuple[dict[str, Any], zipfile.ZipFile]:
    """The manifest and the open archive; checks every entry against the manifest."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    listed = {f["path"] for f in manifest["files"]}
    assert listed == set(archive.namelist()) - {"manifest.json"}
    for entry in manifest["files"]:
        content = archive.read(entry["path"])
        assert len(content) == entry["size_bytes"]
        assert hashlib.sha256(content).hexdigest() == entry["sha256"]
    return manifest, archive


def table_rows(archive: zipfile.ZipFile, table: Table, store: str) -> list[dict[str, Any]]:
    """The rows of table store ``store`` (``app.projects``) in the archive, decoded: its one
    member ``tables/<store>.jsonl``, or its parts ``tables/<store>-00001-of-0000N.jsonl``
    joined in order (checked against the manifest's ``part``/``parts``)."""
    entries = [
        f for f in json.loads(archive.read("manifest.json"))["files"] if f.get("store") == store
    ]
    if len(entries) == 1 and "part" not in entries[0]:
        assert entries[0]["path"] == f"tables/{store}.jsonl"
    else:
        assert [(f["part"], f["parts"]) for f in entries] == [
            (i, len(entries)) for i in range(1, len(entries) + 1)
        ]
        assert [f["path"] for f in entries] == [
            f"tables/{store}-{i:05d}-of-{len(entries):05d}.jsonl"
            for i in range(1, len(entries) + 1)
        ]
    return [
        decode_row(table, line) for f in entries for line in archive.read(f["path"]).splitlines()
    ]


def source_rows(org: int, count: int) -> list[dict[str, Any]]:
    """The projects rows of ``org`` as the database returns them (SQLite: naive UTC)."""
    return [project_row(org * 1000 + i, org) for i in range(count)]


def export_parts(settings: Settings, repo: TenantRepository) -> tuple[Any, ...]:
    """The arguments of ``ExportActivities`` (or a test's subclass of it) for ``settings``."""
    datamap = load_datamap(settings.data_map_path) if settings.data_map_path else None
    return (ExportStorage.from_settings(settings), ExportRepository(repo.sessions), datamap)


def export_worker(
    client: Client, settings: Settings, repo: TenantRepository, exports: ExportActivities
) -> LifecycleWorker:
    """A worker running exports with ``exports`` (a test's subclass, e.g. one whose chunks
    fail or hang) on both queues, like ``build_worker``'s: the export workflows, the tenant
    bookkeeping activities and the export activities."""
    tenants = TenantActivities(repo)
    queue, slots = settings.temporal_task_queue, settings.max_concurrent_lifecycle_jobs
    main = Worker(
        client,
        task_queue=queue,
        workflows=WORKFLOWS,
        workflow_runner=workflow_runner(),
        activities=[
            tenants.get_tenant,
            tenants.create_tenant,
            tenants.transition_tenant,
            tenants.record_operation,
            *exports.activities(),
        ],
        max_concurrent_activities=slots,
        # a stalled chunk of a test learns of its cancellation within a second, not 24 s
        max_heartbeat_throttle_interval=timedelta(seconds=1),
    )
    grace = timedelta(0)
    return LifecycleWorker(main, assembly_worker(client, queue, exports, slots, grace))
