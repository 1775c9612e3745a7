"""Export throughput and worker memory, next to the floor of a plain zipfile + hashlib pass.

    .venv/bin/python benchmarks/export_throughput.py --size-mb 1024

Builds a SaaS application with one tenant of about ``--size-mb`` (``--table-share`` of it as
table rows in SQLite, the rest as incompressible files, plus 10% of another tenant's data),
starts the Temporal dev server and a worker *process* (``python worker.py``), exports the
tenant through the LifecycleClient, and reports:

- export MB/s: tenant bytes exported (JSON Lines + files, as in the manifest) per second of
  the whole workflow (plan, chunks, assembly, staging cleanup);
- peak RSS of the worker process (VmHWM from /proc);
- the floor: the same JSON Lines and files already on disk, written into a ZIP with the same
  compression (tables deflated, files stored) with each file's and the archive's SHA-256,
  zipfile deflating with the stdlib's zlib (the target's floor) and, second, with zlib-ng,
  the export's own compressor (a like-for-like floor), with the archives' sizes.

MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import platform
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Column, Integer, MetaData, String, Table, Text  # noqa: E402
from temporalio.contrib.pydantic import pydantic_data_converter  # noqa: E402
from temporalio.testing import WorkflowEnvironment  # noqa: E402
from zlib_ng import zlib_ng  # noqa: E402

from lifecycle.client.lifecycle import LifecycleClient  # noqa: E402
from lifecycle.config import Settings  # noqa: E402
from lifecycle.dev.devserver import free_port, temporal_cli  # noqa: E402
from lifecycle.domain.billing import BillingResult  # noqa: E402
from lifecycle.domain.onboarding import CreateTenantInput, OnboardRequest  # noqa: E402
from lifecycle.domain.operations import LIFECYCLE_OPERATION, TENANT_ID  # noqa: E402
from lifecycle.persistence.engine import Sessions, create_engine, migrate  # noqa: E402
from lifecycle.persistence.tenants import TenantRepository  # noqa: E402
from tests.support.histories import activity_spans  # noqa: E402

MB = 1_000_000
metadata = MetaData()
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("company_id", Integer, nullable=False, index=True),
    Column("kind", String(32)),
    Column("payload", Text),
)
DATAMAP = """
[databases.app]
url = "sqlite+aiosqlite:///{db}"

[[tables]]
database = "app"
name = "events"
tenant_column = "company_id"

[[storage]]
url = "file://{files}/{{tenant_key}}/"
"""


async def build_app(work: Path, size: int, table_share: float) -> Path:
    """Rows of ~1 kB for tenant 1 (and 10% as much for tenant 2), files of 1-8 MB."""
    engine = create_engine(f"sqlite+aiosqlite:///{work / 'app.db'}")
    rng = random.Random(42)
    words = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(5000)]
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        next_id = 1
        for company, share in ((1, 1.0), (2, 0.1)):
            target, written = int(size * table_share * share), 0
            while written < target:
                batch = []
                for _ in range(5000):
                    payload = " ".join(rng.choices(words, k=140))
                    batch.append(
                        {"id": next_id, "company_id": company, "kind": "click", "payload": payload}
                    )
                    next_id += 1
                    written += len(payload) + 60
                await conn.execute(events.insert(), batch)
    await engine.dispose()
    for company, share in (("1", 1.0), ("2", 0.1)):
        target, written, i = int(size * (1 - table_share) * share), 0, 0
        folder = work / "files" / company
        folder.mkdir(parents=True)
        while written < target:
            n = min(rng.randint(1, 8) * MB, target - written)
            (folder / f"img-{i:05d}.bin").write_bytes(os.urandom(n))
            written, i = written + n, i + 1
    path = work / "datamap.toml"
    path.write_text(DATAMAP.format(db=work / "app.db", files=work / "files"), encoding="utf-8")
    return path


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / MB
    return float("nan")


async def wait_for_poller(client: Any, task_queue: str) -> None:
    """Start the clock only once the worker process polls (its start-up is not export time)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        while not (
            await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=client.namespace,
                    task_queue=TaskQueue(name=task_queue),
                    task_queue_type=kind,
                )
            )
        ).pollers:
            await asyncio.sleep(0.1)


async def phase_seconds(handle: Any) -> dict[str, float]:
    """Wall-clock seconds from the first start to the last completion of each activity type
    (chunks of different streams overlap)."""
    _began, spans = await activity_spans(handle)
    wanted = ("plan_export", "export_chunk", "assemble_export", "discard_staging")
    done = [s for s in spans if s.name in wanted and s.completed is not None]
    return {
        n: max(s.completed or 0 for s in done if s.name == n)
        - min(s.scheduled for s in done if s.name == n)
        for n in wanted
        if any(s.name == n for s in done)
    }


async def timeline(handle: Any) -> list[str]:
    """One line per activity of the export: its Web UI summary, when it started and how long
    it ran (seconds from the workflow's first event), to see which steps overlap."""
    began, spans = await activity_spans(handle)
    done = sorted(
        (s for s in spans if s.started is not None and s.completed is not None),
        key=lambda s: s.completed or 0,
    )
    return [
        f"{(s.started or 0) - began:7.2f} s +{(s.completed or 0) - (s.started or 0):6.2f} s  "
        f"{s.summary}"
        for s in done
    ]


def floor_pass(source: Path, out: Path, deflate: Any = None) -> float:
    """Seconds to ZIP ``source`` (JSONL deflated, files stored) hashing every file and the
    archive: the floor an export cannot beat. ``deflate``: the zlib module zipfile deflates
    with (default: the stdlib's; ``zlib_ng.zlib_ng``: the export's own compressor)."""
    if deflate is not None:
        stdlib, zipfile.zlib = zipfile.zlib, deflate  # type: ignore[attr-defined]
        try:
            return floor_pass(source, out)
        finally:
            zipfile.zlib = stdlib  # type: ignore[attr-defined]
    start = time.perf_counter()
    archive_hash = hashlib.sha256()

    class Hashing:
        def __init__(self, fh: object) -> None:
            self.fh, self.pos = fh, 0

        def write(self, data: bytes) -> int:
            archive_hash.update(data)
            self.pos += len(data)
            return self.fh.write(data)  # type: ignore[attr-defined]

        def tell(self) -> int:
            return self.pos

        def flush(self) -> None:
            self.fh.flush()  # type: ignore[attr-defined]

    with out.open("wb") as fh, zipfile.ZipFile(Hashing(fh), "w") as zf:  # type: ignore[arg-type]
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            name = path.relative_to(source).as_posix()
            deflate = name.endswith(".jsonl")
            info = zipfile.ZipInfo(name)
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            digest = hashlib.sha256()
            with path.open("rb") as src, zf.open(info, "w") as dst:
                while block := src.read(1 << 20):
                    digest.update(block)
                    dst.write(block)
    archive_hash.hexdigest()
    return time.perf_counter() - start


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="export-bench-", dir=args.workdir))
    try:
        load_before = os.getloadavg()
        t0 = time.perf_counter()
        datamap = await build_app(work, int(args.size_mb * MB), args.table_share)
        print(f"built the application in {time.perf_counter() - t0:.0f} s under {work}")
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=temporal_cli(),
            data_converter=pydantic_data_converter,
            search_attributes=[TENANT_ID, LIFECYCLE_OPERATION],
            port=free_port(),
            ui=False,
        )
        variables = {
            "DATA_DIR": str(work / "data"),
            "DATA_MAP_PATH": str(datamap),
            "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
            "TEMPORAL_TASK_QUEUE": "bench",
            "DATA_EXPORT_CHUNK_SIZE_MB": str(args.chunk_mb),
            "SIGNING_SECRET": "bench",
            "API_TOKEN": "bench",
            "LOG_LEVEL": "WARNING",
        }
        settings = Settings(_env_file=None, **{k.lower(): v for k, v in variables.items()})  # type: ignore[arg-type]
        engine = create_engine(settings.db_url)
        await migrate(engine)
        repo = TenantRepository(Sessions(engine))
        await repo.create_tenant(
            CreateTenantInput(
                request=OnboardRequest(
                    tenant_id="bench", name="Bench", email="b@example.com", data_key="1"
                ),
                limits={},
                billing=BillingResult(skipped=True),
                workflow_id="bench",
                actor="bench",
            )
        )
        worker = subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")], env={**os.environ, **variables}, cwd=ROOT
        )
        source = work / "floor-source"
        rounds: list[dict[str, Any]] = []
        try:
            await wait_for_poller(env.client, "bench")
            lc = LifecycleClient(settings, env.client, repo)
            for _ in range(args.rounds):
                # export and floor alternate: this shared machine's speed drifts within minutes
                cpu0, t0 = cpu_seconds(worker.pid), time.perf_counter()
                started = await lc.exports.export_tenant("bench")
                result = await lc.core.handle(started.workflow_id).result()
                seconds = time.perf_counter() - t0
                cpu = cpu_seconds(worker.pid) - cpu0
                phases = await phase_seconds(lc.core.handle(started.workflow_id))
                if args.timeline:
                    print("\n".join(await timeline(lc.core.handle(started.workflow_id))))
                if not source.exists():
                    archive = (
                        settings.exports_dir / "archives" / "bench" / f"{started.export_id}.zip"
                    )
                    with zipfile.ZipFile(archive) as zf:
                        assert zf.testzip() is None
                        zf.extractall(source)
                    (source / "manifest.json").unlink()
                floor_cpu0 = time.process_time()
                floor = floor_pass(source, work / "floor.zip")
                floor_cpu = time.process_time() - floor_cpu0
                floor_ng = floor_pass(source, work / "floor-ng.zip", zlib_ng)
                rounds.append(
                    {
                        "export": seconds,
                        "cpu": cpu,
                        "floor": floor,
                        "floor_cpu": floor_cpu,
                        "floor_ng": floor_ng,
                        "sizes": (
                            (work / "floor.zip").stat().st_size,
                            (work / "floor-ng.zip").stat().st_size,
                        ),
                        "phases": phases,
                        "result": result,
                    }
                )
            rss = peak_rss_mb(worker.pid)
        finally:
            worker.terminate()
            worker.wait()
        exported = sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
        result = rounds[0]["result"]
        print(
            f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}; chunk {args.chunk_mb} MiB; "
            f"load average before: {load_before}"
        )
        print(
            f"tenant data exported: {exported / MB:.0f} MB ({result['rows']} rows, "
            f"{result['files']} files), archive {result['size_bytes'] / MB:.0f} MB"
        )
        for i, r in enumerate(rounds, 1):
            print(
                f"round {i}: export {r['export']:5.1f} s {exported / MB / r['export']:6.1f} MB/s "
                f"(worker CPU {r['cpu']:.1f} s), floor {r['floor']:5.1f} s "
                f"{exported / MB / r['floor']:6.1f} MB/s (CPU {r['floor_cpu']:.1f} s), "
                f"ratio {r['floor'] / r['export']:.2f}"
            )
            print("         phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in r["phases"].items()))
            print(
                f"         floor deflating with zlib-ng as the export does {r['floor_ng']:5.1f} s, "
                f"ratio {r['floor_ng'] / r['export']:.2f}"
            )
        export_s = sum(r["export"] for r in rounds)
        floor_s = sum(r["floor"] for r in rounds)
        print(f"ratio over the summed times: {floor_s / export_s:.2f} of the floor")
        floor_ng_s = sum(r["floor_ng"] for r in rounds)
        print(f"  against the floor deflating with zlib-ng: {floor_ng_s / export_s:.2f}")
        zlib_size, ng_size = rounds[0]["sizes"]
        print(
            f"archives: export {result['size_bytes'] / MB:.1f} MB, floor (zlib) "
            f"{zlib_size / MB:.1f} MB, floor (zlib-ng) {ng_size / MB:.1f} MB"
        )
        print(f"worker peak RSS {rss:.0f} MB; load average after: {os.getloadavg()}")
        await engine.dispose()
        await env.shutdown()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=float, default=1000, help="tenant size (MB)")
    parser.add_argument("--table-share", type=float, default=0.4, help="share in tables")
    parser.add_argument("--chunk-mb", type=float, default=64, help="DATA_EXPORT_CHUNK_SIZE_MB")
    parser.add_argument("--rounds", type=int, default=2, help="export + floor rounds")
    parser.add_argument("--workdir", default=None, help="where to build (default: TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--timeline", action="store_true", help="print each export's activities as they ran"
    )
    asyncio.run(main(parser.parse_args()))
