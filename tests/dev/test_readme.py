"""The README's shell examples, as written (issue 16, "Done when").

Every command of every ```` ```bash ```` block of README.md is either in ``SESSION`` and run
here, in one bash session with the README's own text, against the embedded stack after the
main job (the state `make run` leaves), or in ``ELSEWHERE`` with the test that runs it. A
README example that is in neither fails the first test: a new example gets a check.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.dev.demo import run_demo
from lifecycle.dev.devserver import free_port
from lifecycle.dev.stack import sample_application_env
from lifecycle.domain.states import TenantState
from tests.support.crash import ROOT
from tests.support.fixtures import make_settings, running_stack, serve_api

README = ROOT / "README.md"
Settle = Callable[[LifecycleClient], Awaitable[bool]]


def readme_commands() -> list[str]:
    """Each command of the README's bash blocks, continuation lines joined, comments and
    blank lines left out, in README order."""
    commands: list[str] = []
    inside, current = False, ""
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if not inside or (not current and line.strip().startswith("#")) or not line.strip():
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1].strip() + " "
            continue
        commands.append((current + line.strip()).strip())
        current = ""
    return commands


@dataclass(frozen=True)
class Step:
    """One README command: its expected exit code, a text its output must hold, and what to
    wait for afterwards (the operation it started, as a reader waits before the next line)."""

    command: str
    output: str = ""
    code: int = 0
    settle: Settle | None = None


def acme(check: Callable[..., bool]) -> Settle:
    async def settled(lc: LifecycleClient) -> bool:
        try:
            return check(await lc.get_tenant("acme"))
        except Exception:  # not onboarded yet
            return False

    return settled


def state(expected: TenantState) -> Settle:
    return acme(lambda t: t.state is expected)


async def exports_done(lc: LifecycleClient) -> bool:
    return all(e.status not in ("queued", "running") for e in await lc.exports.list_exports("acme"))


ACTIVE, DELETED = state(TenantState.ACTIVE), state(TenantState.DELETED)
AUTH = '-H "Authorization: Bearer $TOKEN"'
JSON = "-H 'Content-Type: application/json'"

#: The README's commands in the order a reader tries them after `make run`: onboard company
#: 13 as acme, change its plan (and preview changes by the plans file's rules), record usage,
#: export it, delete it, take it back, upgrade it through the compatibility route, delete it
#: again and purge it now, then fetch and verify its certificate; list and redeliver
#: lifecycle events.
SESSION: list[Step] = [
    Step("TOKEN=$(cat .data/api_token)"),
    Step(
        f'curl -s -X POST localhost:8000/tenants {AUTH} {JSON} -d \'{{"tenant_id": "acme", '
        '"name": "Acme", "email": "ops@acme.io", "plan": "starter", "data_key": "13"}\'',
        output='"workflow_id":"tenant-acme-onboard"',
        settle=ACTIVE,
    ),
    Step("tenantctl tenants show acme", output="ACTIVE"),
    Step(
        f"curl -s -X POST localhost:8000/tenants/acme/upgrade {AUTH} {JSON} "
        "-H 'Idempotency-Key: acme-up-1' -d '{\"to_plan\": \"professional\"}'",
        output='"workflow_id":"tenant-acme-upgrade"',
        settle=acme(lambda t: t.plan == "professional" and t.state is TenantState.ACTIVE),
    ),
    # the same upgrade through the CLI: refused, acme is on professional already
    Step("tenantctl tenants upgrade acme --to professional", output="professional", code=1),
    Step(
        f"curl -s localhost:8000/tenants/acme/downgrade-preview?to_plan=starter {AUTH}",
        output='"allowed":true',
    ),
    Step(
        f"curl -s -X POST localhost:8000/tenants/acme/downgrade {AUTH} {JSON} "
        '-d \'{"to_plan": "starter", "effective": "period_end"}\'',
        output='"effective":"period_end"',
        settle=acme(lambda t: t.pending_plan_change is not None),
    ),
    Step(
        f"curl -s -X POST localhost:8000/tenants/acme/downgrade/cancel {AUTH}",
        settle=acme(lambda t: t.pending_plan_change is None),
    ),
    Step(
        "tenantctl tenants downgrade acme --to starter --preview # the check only, nothing starts",
        output="starter",
    ),
    Step(
        "tenantctl tenants downgrade acme --to starter # at the period end (--immediately: now)",
        settle=acme(lambda t: t.pending_plan_change is not None),
    ),
    Step(
        "tenantctl tenants downgrade acme --cancel",
        settle=acme(lambda t: t.pending_plan_change is None),
    ),
    Step(
        f'curl -s "localhost:8000/tenants/acme/plan-change-preview?to_plan=enterprise" {AUTH}',
        output='"rule":"immediate"',
    ),
    Step(
        "tenantctl tenants change-plan acme --to starter --preview "
        "# rule, usage, entitlements, proration",
        output="rule end_of_period: allowed",
    ),
    Step(
        "tenantctl tenants change-plan acme --to enterprise "
        "# upgrade or downgrade, as the rule says",
        output="upgrade (immediately) started",
        settle=acme(lambda t: t.plan == "enterprise" and t.state is TenantState.ACTIVE),
    ),
    Step(
        "tenantctl tenants change-plan acme --to free "
        "# exit 1: [changes.enterprise] free is not_allowed",
        output="rule not_allowed: refused",
        code=1,
    ),
    Step(
        f"curl -s -X PUT localhost:8000/tenants/acme/usage {AUTH} {JSON} "
        '-d \'{"users": 50, "storage_gb": 40}\'',
        output='"over_limit"',
    ),
    Step("tenantctl tenants usage acme users=50 storage_gb=40", output="50"),
    Step(
        "tenantctl datamap check --tenant acme # validate the map, count acme's rows and files",
        output="app.companies",
    ),
    Step(
        "tenantctl export acme --wait --output acme.zip # progress bar, download, SHA-256 verified",
        output="acme.zip",
        settle=exports_done,
    ),
    Step(
        f"curl -s -X POST localhost:8000/tenants/acme/exports {AUTH} {JSON} "
        '-d \'{"export_type": "full"}\' | tee started.json',
        output='"status":"queued"',
        settle=exports_done,
    ),
    Step(
        "EXPORT_ID=$(python3 -c 'import json; "
        'print(json.load(open("started.json"))["export_id"])\')'
    ),
    Step(
        f"curl -s localhost:8000/exports/$EXPORT_ID {AUTH}",
        output='"status":"completed"',
    ),
    Step(
        f"curl -s -X POST localhost:8000/tenants/acme/delete {AUTH} {JSON} "
        '-d \'{"requested_by": "dpo@acme.io", "reason": "contract ended", '
        '"retention_days": 30}\'',
        output='"can_reactivate":true',
        settle=DELETED,
    ),
    Step(
        "temporal workflow signal --workflow-id tenant-acme-deletion --name reactivate "
        '--input \'{"plan": "starter", "requested_by": "ops@acme.io"}\' '
        "# changed our mind: back to ACTIVE",
        settle=ACTIVE,
    ),
    # the specification's flat route: acme came back on starter, up to professional again
    Step(
        f"curl -s -X POST localhost:8000/upgrade {AUTH} {JSON} "
        '-d \'{"tenant_data": {"tenant_id": "acme", "plan": "starter"}, '
        '"new_plan": "professional"}\'',
        output='"workflow_id":"tenant-acme-upgrade"',
        settle=acme(lambda t: t.plan == "professional" and t.state is TenantState.ACTIVE),
    ),
    Step(
        "tenantctl tenants delete acme --requested-by dpo@acme.io "
        "# the same deletion through the CLI",
        settle=DELETED,
    ),
    Step(
        "tenantctl tenants purge acme --confirm acme --requested-by dpo@acme.io "
        '--reason "letter of 2025-07-02" # purge now, retention waived',
        output="waived",
        settle=acme(lambda t: t.purged_at is not None),
    ),
    Step(
        "tenantctl certificate get acme -o acme-certificate.json "
        "# GET /tenants/acme/deletion-certificate"
    ),
    Step(
        "tenantctl certificate verify acme-certificate.json "
        "--keys-url http://localhost:8000/certificates/keys",
        output="valid",
    ),
    Step(
        "curl -s localhost:8000/certificates/keys | python3 -c 'import json, sys; "
        'print(json.load(sys.stdin)["keys"][0]["public_key"])\' > cert-key.pem'
    ),
    Step(
        "tenantctl certificate verify acme-certificate.json --public-key cert-key.pem "
        "# offline, no network",
        output="valid",
    ),
    Step(f'curl -s "localhost:8000/events/deliveries?status=failed" {AUTH}', output="[]"),
    Step(
        f"curl -s -X POST localhost:8000/events/1/redeliver {AUTH} # 202",
        output='"deliveries":[]',  # no EVENT_WEBHOOK_URLS in this session
    ),
    Step(
        "tenantctl events deliveries --status failed # --tenant acme: one tenant's", output="event"
    ),
    Step("tenantctl events redeliver 2", output="event 2: redelivery"),
]

#: README commands run by other tests (or by CI itself), with where.
ELSEWHERE: dict[str, str] = {
    "make run # creates .venv on first use, starts the embedded stack and runs the main job": (
        "CI's fresh clone; the main job itself: tests/dev/test_demo.py"
    ),
    "make test # creates .venv on first use, runs the whole test suite": ".ci/run",
    "python -m lifecycle.dev.adtech.generate --tenants 20 --size-mb 50 --seed 0": (
        "tests/dev/test_sample_app.py (the generator and its CLI defaults)"
    ),
    "tenantctl simulate deletion "
    "# day 0 soft delete, days 1-29 reactivatable, day 30 purge + certificate verified": (
        "tests/dev/test_simulate.py"
    ),
    "tenantctl simulate downgrade # scheduled on day 0, applied at the billing period's end": (
        "tests/dev/test_simulate.py"
    ),
    "tenantctl simulate export-retention --retention-days 45 "
    "# downloadable until the retention deletes it": "tests/dev/test_simulate.py",
    "tenantctl simulate payment-failure --json "
    "# failure, the dunning ladder step by step, invoice paid, restored": (
        "tests/dev/test_simulate.py"
    ),
    "tenantctl simulate trial "
    "# a 14-day trial: trial-ending on day 11, the plan's trial_end_behavior on day 14": (
        "tests/dev/test_simulate.py"
    ),
    "tenantctl simulate pause "
    "# paused (collection paused) on day 0 with resume_at day 10: resumed on schedule": (
        "tests/dev/test_simulate.py"
    ),
    "tenantctl simulate event-delivery "
    "# a receiver down 6 h: back-off attempts, delivered; down 4 days: failed, redelivered": (
        "tests/dev/test_simulate.py"
    ),
    ".venv/bin/python -m tests.support.record_histories # all, or name classes to refresh": (
        "tests/operations/test_replay.py replays what it records"
    ),
}


def normalized(command: str) -> str:
    return " ".join(command.split())


def test_every_readme_command_is_checked() -> None:
    found = {normalized(c) for c in readme_commands()}
    checked = {normalized(s.command) for s in SESSION} | {normalized(c) for c in ELSEWHERE}
    assert found - checked == set(), "README examples with no check"
    assert checked - found == set(), "checks of commands the README no longer shows"


class Shell:
    """One bash session (the reader's terminal): variables persist from line to line."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            text=True,
        )

    def run(self, command: str) -> tuple[int, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        marker = uuid.uuid4().hex
        self.proc.stdin.write(f"{command}\nrc=$?; echo; echo {marker} $rc\n")
        self.proc.stdin.flush()
        lines: list[str] = []
        for line in self.proc.stdout:
            if line.startswith(marker):
                return int(line.split()[1]), "".join(lines)
            lines.append(line)
        raise AssertionError(f"the shell ended during {command!r}: {''.join(lines)}")

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


async def until(check: Settle, lc: LifecycleClient, what: str, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check(lc):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"after {what!r}: not settled within {timeout}s")
        await asyncio.sleep(0.2)


@pytest.mark.timeout(600)
async def test_the_readme_session_runs_as_written_after_the_main_job(
    own_dev_env: WorkflowEnvironment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("APP_DATABASE_URL", "APP_STORAGE_URL", "DATA_MAP_PATH", "APP_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)
    project = tmp_path / "project"
    project.mkdir()
    port = free_port()
    settings = make_settings(
        tmp_path,
        data_dir=project / ".data",
        api_token=None,  # minted into .data/api_token, as `make run` does
        temporal_address=own_dev_env.client.service_client.config.target_host,
        api_port=port,
    )
    for var, value in sample_application_env(settings).items():
        monkeypatch.setenv(var, value)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "COLUMNS": "200",
        "API_PORT": str(port),
        "TEMPORAL_ADDRESS": settings.temporal_address or "",
        "TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        **{k: v for k, v in os.environ.items() if k.startswith("APP_") or k == "DATA_MAP_PATH"},
    }
    async with running_stack(own_dev_env, settings) as lc, serve_api(lc, port):
        await run_demo(settings, Console(record=True, width=200), tenants=12, size_mb=3)
        shell = Shell(project, env)
        try:
            for step in SESSION:
                command = step.command.replace("localhost:8000", f"localhost:{port}")
                code, output = await asyncio.to_thread(shell.run, command)
                assert code == step.code, f"{step.command}\n-> exit {code}\n{output}"
                assert step.output in output, f"{step.command}\n-> {output}"
                if step.settle is not None:
                    await until(step.settle, lc, step.command)
        finally:
            shell.close()
    assert (project / "acme.zip").stat().st_size > 1000  # company 13's real data
