"""The data map at startup and in ``tenantctl datamap check``; ``tenantctl export`` against
the API over HTTP (progress, download, SHA-256 verified)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from lifecycle.api.app import create_app
from lifecycle.cli.app import app as cli
from lifecycle.domain.errors import ConfigError
from tests.support.export_helpers import make_app
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import new_tenant
from worker import build_activities

runner = CliRunner()


def cli_env(tmp_path: Path, datamap: Path) -> dict[str, str]:
    return {
        "DATA_DIR": str(tmp_path / "data"),
        "DATA_MAP_PATH": str(datamap),
        "API_TOKEN": "test-token",
        "SIGNING_SECRET": "test-signing-secret",
    }


async def test_bad_data_map_fails_worker_and_api_startup(tmp_path: Path) -> None:
    app = await make_app(tmp_path)
    app.datamap.write_text(app.datamap.read_text().replace("{tenant_key}", "shared"))
    settings = make_settings(tmp_path, data_map_path=app.datamap)
    message = r"storage\[0\] \(file://.*/shared/\): the URL has no \{tenant_key\} placeholder"
    with pytest.raises(ConfigError, match=message):
        create_app(settings)
    with pytest.raises(ConfigError, match=message):
        build_activities(settings, None)  # type: ignore[arg-type]


async def test_datamap_check_names_the_bad_entry(tmp_path: Path) -> None:
    app = await make_app(tmp_path)
    env = cli_env(tmp_path, app.datamap)
    good = app.datamap.read_text()

    app.datamap.write_text(good.replace('table = "projects"', 'table = "notes"'))
    result = await asyncio.to_thread(runner.invoke, cli, ["datamap", "check"], env=env)
    assert result.exit_code == 1
    assert "tables[1] (notes): parent cycle notes -> notes" in " ".join(result.output.split())

    app.datamap.write_text(good.replace('name = "notes"', 'name = "comments"'))
    result = await asyncio.to_thread(runner.invoke, cli, ["datamap", "check"], env=env)
    assert result.exit_code == 1
    assert "unknown table 'comments'" in " ".join(result.output.split())

    app.datamap.write_text(good)
    result = await asyncio.to_thread(runner.invoke, cli, ["datamap", "check"], env=env)
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "24" in lines["app.projects"] and "72" in lines["app.notes"]  # both orgs
    assert "6" in lines["storage[0]"]  # 3 files of each org
    assert "data map OK" in result.output


async def test_tenantctl_export_downloads_and_verifies(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path)
    settings = make_settings(tmp_path, data_map_path=app.datamap, data_export_chunk_size_mb=0.01)
    tenant = uid("cli")
    env = cli_env(tmp_path, app.datamap)
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, tenant, data_key="2")
        check = await asyncio.to_thread(
            runner.invoke, cli, ["datamap", "check", "--tenant", tenant], env=env
        )
        assert check.exit_code == 0, check.output
        assert "data_key 2" in check.output
        out = tmp_path / "export.zip"
        result = await asyncio.to_thread(
            runner.invoke,
            cli,
            ["export", tenant, "--wait", "--output", str(out), "--api", str(http.base_url)],
            env=env,
        )
        assert result.exit_code == 0, result.output
        assert "verified" in result.output and "no data in any store" not in result.output
        exports = await lc.exports.list_exports(tenant)
        assert hashlib.sha256(out.read_bytes()).hexdigest() == exports[0].sha256

        # issue 16, item 4: a data key that matches nothing (the README's old acme) is said
        empty = uid("typo")
        await new_tenant(lc, empty, data_key="no-such-org")
        check = await asyncio.to_thread(
            runner.invoke, cli, ["datamap", "check", "--tenant", empty], env=env
        )
        assert check.exit_code == 0 and "has no data in any store" in check.output
        args = ["export", empty, "--wait", "--output", str(tmp_path / "empty.zip")]
        result = await asyncio.to_thread(
            runner.invoke, cli, [*args, "--api", str(http.base_url)], env=env
        )
        assert result.exit_code == 0, result.output
        assert f"tenant '{empty}' has no data in any store" in " ".join(result.output.split())


async def test_datamap_check_lists_unmapped_tenant_tables_and_exits_1(tmp_path: Path) -> None:
    from sqlalchemy import text

    from lifecycle.persistence.engine import create_engine

    app = await make_app(tmp_path)
    env = cli_env(tmp_path, app.datamap)
    engine = create_engine(app.url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE audit_log (id INTEGER PRIMARY KEY, org_id INT)"))
    await engine.dispose()
    result = await asyncio.to_thread(runner.invoke, cli, ["datamap", "check"], env=env)
    output = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    assert "1 unmapped table(s) hold tenant data" in output
    assert "app.audit_log: tenant column 'org_id'" in output
    assert "data map OK" not in output

    with app.datamap.open("a", encoding="utf-8") as f:
        f.write('\n[[ignore]]\ndatabase = "app"\nname = "audit_log"\nreason = "no PII"\n')
    result = await asyncio.to_thread(runner.invoke, cli, ["datamap", "check"], env=env)
    assert result.exit_code == 0, result.output


async def test_worker_warns_about_unmapped_tables_at_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import text

    from lifecycle.persistence.engine import create_engine
    from worker import warn_unmapped

    app = await make_app(tmp_path)
    engine = create_engine(app.url)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE audit_log (id INTEGER PRIMARY KEY, org_id INT)"))
    await engine.dispose()
    with caplog.at_level("WARNING"):
        warnings = await warn_unmapped(make_settings(tmp_path, data_map_path=app.datamap))
    assert len(warnings) == 1 and "table app.audit_log holds tenant data" in warnings[0]
    assert "app.audit_log" in caplog.text


async def test_export_wait_gives_up_after_its_timeout(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """No worker polls: the export stays queued, and ``--wait`` used to follow it for ever."""
    from lifecycle.client.lifecycle import LifecycleClient
    from lifecycle.persistence.engine import Sessions, create_engine, migrate
    from lifecycle.persistence.tenants import TenantRepository

    app = await make_app(tmp_path)
    settings = make_settings(tmp_path, data_map_path=app.datamap)
    engine = create_engine(settings.db_url)
    await migrate(engine)
    lc = LifecycleClient(settings, dev_env.client, TenantRepository(Sessions(engine)))
    tenant = uid("cli")
    await new_tenant(lc, tenant, data_key="2")
    async with serve_api(lc) as http:
        args = ["export", tenant, "--wait", "--timeout", "2", "--api", str(http.base_url)]
        result = await asyncio.to_thread(
            runner.invoke, cli, args, env=cli_env(tmp_path, app.datamap)
        )
        exports = await lc.exports.list_exports(tenant)
        await lc.core.handle(exports[0].workflow_id).terminate("test over")
    await engine.dispose()
    assert result.exit_code == 3, result.output
    assert "still queued after 2s" in " ".join(result.output.split())
