"""Export activities run directly (no workflow): chunk bounds, re-import of the JSON Lines,
a completed chunk never redone, and a property test over random tenants and values."""

from __future__ import annotations

import asyncio
import io
import os
import zipfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    delete,
    select,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.exports import ExportActivities, part_name
from lifecycle.domain.exports import (
    AssembleInput,
    ChunkInput,
    ChunkRecord,
    ExportPlan,
    PlanInput,
)
from lifecycle.persistence.engine import Sessions, create_engine, migrate
from lifecycle.persistence.exports import ExportRepository
from lifecycle.storage.datamap import load_datamap, parse_datamap
from lifecycle.storage.exports import ExportStorage
from lifecycle.storage.objectstore import S3Options
from tests.support.export_helpers import (
    make_app,
    notes,
    project_row,
    projects,
    read_archive,
    source_rows,
    table_rows,
)


def local_storage(root: Path) -> ExportStorage:
    return ExportStorage("local", root, "unused", S3Options())


async def activities(root: Path, datamap: Any) -> ExportActivities:
    """Export activities over a fresh migrated SQLite control plane (records are not touched)."""
    root.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite+aiosqlite:///{root / 'control-plane.db'}")
    await migrate(engine)  # planning checks that no other live tenant holds the data key
    return ExportActivities(local_storage(root), ExportRepository(Sessions(engine)), datamap)


async def export_directly(
    acts: ExportActivities,
    tenant: str,
    data_key: str,
    chunk_bytes: int,
    export_type: str = "full",
    after_plan: Callable[[ExportPlan], Awaitable[None]] | None = None,
) -> tuple[ExportPlan, list[int], bytes]:
    """Plan, every chain of chunks, and the assembly, as the workflow runs them;
    ``after_plan`` runs between the plan and the first chunk."""
    env = ActivityEnvironment()
    plan = await env.run(
        acts.plan_export,
        PlanInput(
            tenant_id=tenant,
            export_id="e1",
            data_key=data_key,
            export_type=export_type,  # type: ignore[arg-type]
            chunk_bytes=chunk_bytes,
        ),
    )
    if after_plan is not None:
        await after_plan(plan)
    chunks = []
    for stream in plan.streams:
        seq, after = 0, stream.start
        while True:
            done = await env.run(
                acts.export_chunk,
                ChunkInput(
                    tenant_id=tenant,
                    export_id="e1",
                    data_key=data_key,
                    stream=stream.index,
                    kind=stream.kind,
                    ref=stream.ref,
                    seq=seq,
                    after=after,
                    until=stream.until,
                    max_bytes=chunk_bytes,
                ),
            )
            seq, after = seq + 1, done.after
            if done.done:
                break
        chunks.append(seq)
    result = await env.run(
        acts.assemble_export,
        AssembleInput(
            tenant_id=tenant,
            export_id="e1",
            export_type=export_type,  # type: ignore[arg-type]
            generated_at=datetime(2026, 11, 30, tzinfo=UTC),
            streams=plan.streams,
            chunks=chunks,
        ),
    )
    data = (acts.storage.root / result.key).read_bytes()
    return plan, chunks, data


@pytest.fixture(params=["sqlite", "postgresql"])
async def app_url(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'app.db'}" if request.param == "sqlite" else pg_url


async def test_table_larger_than_a_chunk_is_split_into_key_ranges(
    app_url: str, tmp_path: Path
) -> None:
    """A table of several chunks becomes parts of consecutive primary-key ranges (one
    column for projects, two for notes, whose tenant is found through its parent), each
    part its own member with its own SHA-256; the parts joined hold every row once, in key
    order, and every part stayed under the chunk bound."""
    app = await make_app(tmp_path, app_url, projects_per_org=40)
    acts = await activities(tmp_path / "exports", load_datamap(app.datamap))
    bound = 1500
    plan, chunks, data = await export_directly(acts, "acme", "1", bound)
    names = [s.name for s in plan.streams]
    assert names[-1] == "storage[0]" and set(names) == {"app.projects", "app.notes", "storage[0]"}
    for name, rows in (("app.projects", 40), ("app.notes", 120)):
        parts = [s for s in plan.streams if s.name == name]
        assert len(parts) > 3 and [s.part for s in parts] == list(range(1, len(parts) + 1))
        assert sum(s.items for s in parts) == rows
        # consecutive ranges: each part starts after the previous one's last key
        assert parts[0].start is None and parts[-1].until is None
        assert all(a.until == b.start for a, b in zip(parts, parts[1:], strict=False))
    # every part stayed under the bound (checked in the sidecars before staging is discarded)
    staging = tmp_path / "exports" / "staging" / "acme" / "e1"
    for stream, count in enumerate(chunks):
        for seq in range(count):
            record = ChunkRecord.model_validate_json(
                (staging / f"{part_name(stream, seq)}.json").read_bytes()
            )
            assert record.bytes <= bound or record.items == 1
    manifest, archive = read_archive(data)
    assert table_rows(archive, projects, "app.projects") == source_rows(1, 40)
    exported_notes = table_rows(archive, notes, "app.notes")
    assert [(r["project_id"], r["seq"]) for r in exported_notes] == [
        (1000 + i, s) for i in range(40) for s in range(3)
    ]
    assert manifest["files"][0]["columns"]["budget"].startswith("NUMERIC")


async def test_parts_that_changed_after_planning(app_url: str, tmp_path: Path) -> None:
    """Rows added after the plan inside a part's key range make that part's chain longer,
    not another part's; a part whose rows were all deleted is an empty member. Each chunk
    stays under the bound and every row is exported once."""
    app = await make_app(tmp_path, app_url, projects_per_org=40)
    acts = await activities(tmp_path / "exports", load_datamap(app.datamap))
    added = [project_row(500 + i, 1) for i in range(20)]  # keys before the first part's last
    gone: list[int] = []

    async def change(plan: ExportPlan) -> None:
        first, second = [s for s in plan.streams if s.name == "app.projects"][:2]
        assert first.part == 1 and first.until is not None and first.until[0] > 500 + 20
        gone.extend(range(second.start[0] + 1, second.until[0] + 1))  # the second part's keys
        engine = create_engine(app.url)
        async with engine.begin() as conn:
            await conn.execute(projects.insert(), added)
            await conn.execute(delete(notes).where(notes.c.project_id.in_(gone)))
            await conn.execute(delete(projects).where(projects.c.id.in_(gone)))
        await engine.dispose()

    plan, chunks, data = await export_directly(acts, "acme", "1", 1500, after_plan=change)
    first, second = [s for s in plan.streams if s.name == "app.projects"][:2]
    assert chunks[first.index] > 1 and gone
    manifest, archive = read_archive(data)
    emptied = next(f for f in manifest["files"] if f["path"] == second.path)
    assert emptied["rows"] == 0 and emptied["size_bytes"] == 0
    assert table_rows(archive, projects, "app.projects") == (
        [project_row(500 + i, 1) for i in range(20)]
        + [r for r in source_rows(1, 40) if r["id"] not in gone]
    )


async def test_completed_chunk_is_never_redone(tmp_path: Path) -> None:
    app = await make_app(tmp_path, projects_per_org=5)
    acts = await activities(tmp_path / "exports", load_datamap(app.datamap))
    chunk = ChunkInput(
        tenant_id="acme",
        export_id="e2",
        data_key="1",
        stream=0,
        kind="table",
        ref=0,
        seq=0,
        max_bytes=10**6,
    )
    env = ActivityEnvironment()
    first = await env.run(acts.export_chunk, chunk)
    part = tmp_path / "exports" / "staging" / "acme" / "e2" / "000" / "000000.part"
    stat = part.stat()
    # the rows change after the chunk completed (a retry after a crash must not see them)
    engine = create_engine(app.url)
    async with engine.begin() as conn:
        await conn.execute(delete(notes))
        await conn.execute(delete(projects).where(projects.c.org_id == 1))
    await engine.dispose()
    again = await env.run(acts.export_chunk, chunk)
    assert again == first and first.items == 5 and first.done
    assert part.stat().st_mtime_ns == stat.st_mtime_ns and part.stat().st_ino == stat.st_ino


# -- property: random tenants' rows re-import exactly ---------------------------------------

prop_meta = MetaData()
items = Table(
    "items",
    prop_meta,
    Column("id", Integer, primary_key=True),
    Column("tenant", String(20), nullable=False),
    Column("label", Text),
    Column("payload", LargeBinary),
    Column("score", Float),
    Column("seen", DateTime),
)
PROP_MAP = """
[databases.app]
url = "{url}"

[[tables]]
database = "app"
name = "items"
tenant_column = "tenant"
"""

texts = st.one_of(
    st.none(),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=2000, max_size=6000),
)
rows_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "tenant": st.sampled_from(["t1", "t2", "t3"]),
            "label": texts,
            "payload": st.one_of(st.none(), st.binary(max_size=3000)),
            "score": st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)),
            "seen": st.one_of(
                st.none(),
                st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1)),
            ),
        }
    ),
    max_size=40,
)


async def _roundtrip(root: Path, rows: list[dict[str, Any]], chunk_bytes: int) -> None:
    url = f"sqlite+aiosqlite:///{root / 'prop.db'}"
    engine = create_engine(url)
    async with engine.begin() as conn:
        await conn.run_sync(prop_meta.drop_all)
        await conn.run_sync(prop_meta.create_all)
        if rows:
            await conn.execute(items.insert(), [{"id": i + 1, **r} for i, r in enumerate(rows)])
        stored = [
            dict(r) for r in (await conn.execute(select(items).order_by(items.c.id))).mappings()
        ]
    await engine.dispose()
    acts = await activities(root / "exports", parse_datamap(PROP_MAP.format(url=url)))
    for key in ("t1", "t2"):
        _plan, _chunks, data = await export_directly(acts, key, key, chunk_bytes, "tables")
        archive = zipfile.ZipFile(io.BytesIO(data))
        exported = table_rows(archive, items, "app.items")
        assert exported == [r for r in stored if r["tenant"] == key]
        await acts.storage.delete_tenant_exports(key)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rows=rows_strategy, chunk_bytes=st.sampled_from([500, 4000, 10**6]))
def test_exported_rows_reimport_exactly(
    tmp_path: Path, rows: list[dict[str, Any]], chunk_bytes: int
) -> None:
    asyncio.run(_roundtrip(tmp_path, rows, chunk_bytes))


async def test_assembly_refuses_a_damaged_part_and_parts_of_an_older_worker(
    tmp_path: Path,
) -> None:
    """The assembly copies parts without re-reading them for checksums, so it checks each
    part's length against its sidecar; sidecars of plain parts (before the member format)
    are refused with a reason instead of yielding a broken archive."""
    app = await make_app(tmp_path, projects_per_org=40)
    acts = await activities(tmp_path / "exports", load_datamap(app.datamap))
    plan, chunks, _ = await export_directly(acts, "acme", "1", 1500)
    root = tmp_path / "exports"
    (root / "archives" / "acme" / "e1.json").unlink()  # assemble again
    again = AssembleInput(
        tenant_id="acme",
        export_id="e1",
        export_type="full",
        generated_at=datetime(2026, 11, 30, tzinfo=UTC),
        streams=plan.streams,
        chunks=chunks,
    )
    stream = len(chunks) // 2  # a table's part
    assert plan.streams[stream].kind == "table"
    part = root / "staging" / "acme" / "e1" / f"{part_name(stream, 0)}.part"
    intact = part.read_bytes()
    # zeroed in place, its length intact (an OS crash before the kernel wrote the page:
    # parts are not fsynced): the CRC-32 of the sidecar tells
    part.write_bytes(intact[:10] + bytes(len(intact) - 20) + intact[-10:])
    with pytest.raises(ApplicationError) as zeroed:
        await ActivityEnvironment().run(acts.assemble_export, again)
    assert zeroed.value.type == "ChecksumMismatch" and "CRC-32" in str(zeroed.value)
    part.write_bytes(intact[:-1])
    with pytest.raises(ApplicationError) as damaged:
        await ActivityEnvironment().run(acts.assemble_export, again)
    assert damaged.value.type == "ChecksumMismatch" and f"{stream}/0" in str(damaged.value)
    sidecar = root / "staging" / "acme" / "e1" / f"{part_name(0, 0)}.json"
    record = ChunkRecord.model_validate_json(sidecar.read_bytes())
    sidecar.write_text(record.model_copy(update={"member": False}).model_dump_json())
    with pytest.raises(ApplicationError) as legacy:
        await ActivityEnvironment().run(acts.assemble_export, again)
    assert legacy.value.type == "LegacyChunks"
    assert not (root / "archives" / "acme" / "e1.json").exists()  # nothing recorded done


async def test_files_spanning_read_blocks_get_their_headers_where_they_start(
    tmp_path: Path,
) -> None:
    """Several files in one part, across the 1 MiB read blocks, with empty ones between and
    at the end: each stored member's header sits where its file starts (testzip, hashes)."""
    app = await make_app(tmp_path, projects_per_org=2)
    folder = app.files / "1" / "img"
    sizes = {"a.bin": 1_500_000, "b.bin": 0, "c.bin": 2_600_000, "d.bin": 7, "e.bin": 0}
    for name, size in sizes.items():
        (folder / name).write_bytes(os.urandom(size))
    acts = await activities(tmp_path / "exports", load_datamap(app.datamap))
    _, chunks, data = await export_directly(acts, "acme", "1", 10**8)
    assert chunks[-1] == 1  # one part holds every file
    manifest, archive = read_archive(data)
    stored = {f["path"].rsplit("/", 1)[1]: f["size_bytes"] for f in manifest["files"]}
    assert {name: stored[name] for name in sizes} == sizes
    assert archive.read("files/0/img/c.bin") == (folder / "c.bin").read_bytes()
