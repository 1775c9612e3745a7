"""The production topology as processes on this machine (issue 15, item 10).

PostgreSQL databases for the control plane and the sample application (lifecycle/dev/adtech,
through its data map's APP_DATABASE_URL / APP_STORAGE_URL), the Temporal dev server, an
S3-compatible server (moto's server, exports), the Stripe-compatible server, 2 API processes
(``uvicorn starter_api:app``) and 3 worker processes (``python worker.py``). 64 tenants go
through every operation concurrently, alternating between the two APIs, while a random
worker is SIGKILLed 5 times and replaced each time.

Purge: the retention is 30 to 90 days and the dev server cannot skip time, so the tenants of
the ``purged`` scenario are erased with purge now (``POST /tenants/{id}/purge``, the audited
waiver of the rest of the retention): 0 rows and files left in every store and a certificate
that verifies with the public key of ``GET /certificates/keys``. The other soft-deleted
tenants keep every row and file (nothing is purged early), their purge is scheduled
retention days after the deletion, no certificate exists yet, the deletion workflows wait on
their timer, a legal hold is recorded, and a reactivation through the deletion workflow
brings a tenant back with a new subscription.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from lifecycle.client.base import task_queue_pollers
from lifecycle.dev.adtech.generate import generate
from lifecycle.dev.devserver import free_port, start_dev_server
from lifecycle.domain.certificate import key_id, load_public_key, verify
from lifecycle.domain.plans import load_plans
from lifecycle.persistence.engine import Sessions, create_engine
from lifecycle.persistence.tables import Operation
from lifecycle.storage.datamap import load_datamap
from lifecycle.storage.stores import TenantStores
from tests.support.crash import ROOT, settings_env
from tests.support.fixtures import fresh_pg_database, make_settings
from tests.support.stripe_server import JournalEntry, StripeServer

pytestmark = pytest.mark.timeout(420)

TENANTS = 64
KILLS = 5
SEED = 15
DATAMAP = ROOT / "lifecycle" / "dev" / "adtech" / "datamap.toml"
#: Every wait in this test ends by this many seconds (a killed worker's activity is retried
#: after its start-to-close timeout, 20 s, or its heartbeat timeout, 30 to 60 s).
WAIT = 180.0
SCENARIOS = ("full", "reactivated", "legal-hold", "active", "purged")


class Proc:
    """A child process with its log file."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name, self.proc, self.log = name, proc, log

    @classmethod
    def spawn(cls, name: str, cmd: list[str], env: dict[str, str], log: Path) -> Proc:
        out = open(log, "ab")
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        out.close()
        return cls(name, proc, log)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def tail(self, n: int = 3000) -> str:
        return f"--- {self.name} ({self.log}):\n{self.log.read_text(errors='replace')[-n:]}"


async def until(what: str, check: Callable[[], Awaitable[Any]], timeout: float = WAIT) -> Any:
    """Poll ``check`` until it returns a truthy value; AssertionError naming ``what`` after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        # once a second, as a client would: each GET /operations/{id} of a running workflow
        # is a query its worker answers (a replay of the whole history when not cached), and
        # 64 tenants polling 4 times a second starved the workers of CPU after the kills
        await asyncio.sleep(1.0)
    raise AssertionError(f"{what}: not reached within {timeout}s (last: {last!r})")


class Driver:
    """Drives one tenant through its scenario over HTTP, alternating the two APIs."""

    def __init__(self, apis: list[httpx.AsyncClient], index: int, company: int) -> None:
        self.apis, self.index, self.company = apis, index, company
        self.tenant = f"topo-{company}"
        self.scenario = SCENARIOS[index % len(SCENARIOS)]
        self.calls = 0
        self.subscription: str | None = None
        self.customer: str | None = None
        self.steps: list[str] = []
        self.unavailable: list[str] = []

    def api(self) -> httpx.AsyncClient:
        self.calls += 1
        return self.apis[(self.index + self.calls) % len(self.apis)]

    async def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST as a well-behaved client: a 503 (a dependency not ready, e.g. the workflow of
        a killed worker not yet taken over) is recorded in :attr:`unavailable` and sent again
        (to the other API) after its Retry-After, until the deadline; anything else but
        200/202, a 500 above all, fails the test."""
        deadline = time.monotonic() + WAIT
        response = await self.api().post(path, json=body)
        while response.status_code == 503 and time.monotonic() < deadline:
            self.unavailable.append(f"POST {path}: {response.json().get('detail')}")
            await asyncio.sleep(float(response.headers.get("retry-after", "1")))
            response = await self.api().post(path, json=body)
        assert response.status_code in (200, 202), (
            f"{self.tenant} POST {path}: {response.status_code} {response.text}"
        )
        result: dict[str, Any] = response.json()
        return result

    async def get(self, path: str) -> dict[str, Any]:
        response = await self.api().get(path)
        assert response.status_code == 200, f"{self.tenant} GET {path}: {response.text}"
        result: dict[str, Any] = response.json()
        return result

    async def finish(self, started: dict[str, Any]) -> None:
        """Wait until the started run completed (failed, cancelled: the test fails)."""
        wid = started["workflow_id"]

        async def ended() -> dict[str, Any] | None:
            op = await self.get(f"/operations/{wid}")
            return op if op["status"] != "running" else None

        op = await until(f"{self.tenant}: {wid} ended", ended)
        assert op["status"] == "completed", f"{self.tenant}: {wid} ended {op}"

    async def state(self, state: str) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            tenant = await self.get(f"/tenants/{self.tenant}")
            return tenant if tenant["state"] == state else None

        tenant: dict[str, Any] = await until(f"{self.tenant} {state}", reached)
        return tenant

    async def step(self, name: str, path: str, body: dict[str, Any] | None = None) -> None:
        self.steps.append(name)
        await self.finish(await self.post(path, body))

    async def run(self) -> None:
        t = f"/tenants/{self.tenant}"
        await self.step(
            "onboard",
            "/tenants",
            {
                "tenant_id": self.tenant,
                "name": f"Company {self.company}",
                "email": f"ops@{self.tenant}.io",
                "plan": "starter",
                "data_key": str(self.company),
            },
        )
        onboarded = await self.get(t)
        self.subscription = onboarded["billing_subscription_id"]
        self.customer = onboarded["billing_customer_id"]
        if self.scenario == "full":
            await self.step("upgrade", f"{t}/upgrade", {"to_plan": "professional"})
            await self.step(
                "downgrade", f"{t}/downgrade", {"to_plan": "starter", "effective": "immediately"}
            )
            await self.step("export", f"{t}/exports", {"export_type": "full"})
            await self.step("suspend", f"{t}/suspend", {"reason": "topology test"})
            await self.step("reactivate", f"{t}/reactivate", {})
            await self._delete()
        elif self.scenario == "reactivated":
            await self.step("export", f"{t}/exports", {"export_type": "tables"})
            await self._delete()
            self.steps.append("reactivate-deleted")
            await self.post(f"{t}/reactivate", {"requested_by": "topology"})
            await self.state("ACTIVE")
        elif self.scenario == "legal-hold":
            await self.step("suspend", f"{t}/suspend", {"reason": "topology test"})
            await self._delete()
            self.steps.append("legal-hold")
            hold = {"reason": "litigation", "requested_by": "legal"}
            await self.post(f"{t}/legal-hold", hold)
            await until(
                f"{self.tenant} legal hold", lambda: self._field("legal_hold"), timeout=WAIT
            )
        elif self.scenario == "purged":
            await self._delete()
            self.steps.append("purge-now")
            waiver = {"requested_by": "dpo@topology.io", "reason": "written request"}
            await self.post(f"{t}/purge", {**waiver, "confirm": self.tenant})
            await until(f"{self.tenant} purged", lambda: self._field("purged_at"), timeout=WAIT)
        else:
            await self.step("upgrade", f"{t}/upgrade", {"to_plan": "professional"})
            await self.step("export", f"{t}/exports", {"export_type": "full"})

    async def _field(self, name: str) -> Any:
        return (await self.get(f"/tenants/{self.tenant}"))[name]

    async def _delete(self) -> None:
        self.steps.append("delete")
        await self.post(f"/tenants/{self.tenant}/delete", {"requested_by": "dpo@topology.io"})
        await self.state("DELETED")


def expected_billing(driver: Driver, item: str) -> list[tuple[str, str, str, str]]:
    """(method, path, workflow id of the key, step of the key) of every mutating Stripe call
    the tenant's scenario makes, in order."""
    tid, sub = driver.tenant, driver.subscription
    calls = [
        ("POST", "/v1/customers", f"tenant-{tid}-onboard", "customer"),
        ("POST", "/v1/subscriptions", f"tenant-{tid}-onboard", "subscription"),
    ]
    cancel = ("DELETE", f"/v1/subscriptions/{sub}", f"tenant-{tid}-deletion", "cancel-subscription")
    upgrade = ("POST", f"/v1/subscription_items/{item}", f"tenant-{tid}-upgrade", "billing")
    if driver.scenario == "full":
        downgrade = ("POST", f"/v1/subscription_items/{item}", f"tenant-{tid}-downgrade", "billing")
        # suspension keeps the subscription; reactivation finds it live on the same price
        calls += [upgrade, downgrade, cancel]
    elif driver.scenario == "reactivated":
        resume = ("POST", "/v1/subscriptions", f"tenant-{tid}-deletion", "resume-subscription")
        calls += [cancel, resume]
    elif driver.scenario == "legal-hold":
        calls += [cancel]
    elif driver.scenario == "purged":  # erasure deletes the billing customer too
        erase = ("DELETE", f"/v1/customers/{driver.customer}", f"tenant-{tid}-deletion")
        calls += [cancel, (*erase, "delete-customer")]
    else:
        calls += [upgrade]
    return calls


def journal_of(entries: list[JournalEntry], tenant: str) -> list[JournalEntry]:
    prefix = f"tenant-{tenant}-"
    return [e for e in entries if (e.idempotency_key or "").startswith(prefix)]


def key_parts(entry: JournalEntry) -> tuple[str, str]:
    wid, _run, step = (entry.idempotency_key or "").split(":", 2)
    return wid, step


def metric_totals(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith("lifecycle_operations"):
            continue
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_production_topology_with_worker_kills(
    pg_admin_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t0 = time.monotonic()
    procs: list[Proc] = []
    workers: list[Proc] = []
    stripe = StripeServer()
    for plan in load_plans().plans:
        stripe.add_price(plan.price_id, plan.monthly_price_cents)
    await stripe.start()
    try:
        async with (
            fresh_pg_database(pg_admin_url, "tl_topo_cp") as cp_url,
            fresh_pg_database(pg_admin_url, "tl_topo_app") as app_url,
        ):
            try:
                await _run(tmp_path, monkeypatch, stripe, cp_url, app_url, procs, workers, t0)
            finally:  # the processes stop before their databases are dropped
                for p in reversed(procs):
                    p.stop()
    finally:
        for p in reversed(procs):
            p.stop()
        await stripe.stop()


async def _run(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    stripe: StripeServer,
    cp_url: str,
    app_url: str,
    procs: list[Proc],
    workers: list[Proc],
    t0: float,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    # -- the servers ----------------------------------------------------------------------
    temporal_port = free_port()
    temporal = start_dev_server(
        None, port=temporal_port, ui_port=None, log_file=logs / "temporal.log"
    )
    procs.append(Proc("temporal", temporal, logs / "temporal.log"))
    s3_port = free_port()
    s3_url = f"http://127.0.0.1:{s3_port}"
    procs.append(
        Proc.spawn(
            "s3",
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)],
            dict(os.environ),
            logs / "s3.log",
        )
    )
    storage_url = f"{(tmp_path / 'app-storage').as_uri()}/"
    monkeypatch.setenv("APP_DATABASE_URL", app_url)
    monkeypatch.setenv("APP_STORAGE_URL", storage_url)
    report = await generate(app_url, storage_url, tenants=TENANTS, size_mb=2, seed=SEED)
    settings = make_settings(
        tmp_path,
        database_url=cp_url,
        temporal_address=f"127.0.0.1:{temporal_port}",
        data_map_path=DATAMAP,
        stripe_api_key=stripe.api_key,
        stripe_api_base=stripe.url,
        export_storage_type="s3",
        s3_endpoint_url=s3_url,
        s3_bucket="topology-exports",
        s3_access_key_id="test",
        s3_secret_access_key="test",
        data_export_chunk_size_mb=1,  # one chunk per stream: the kills are under test
        worker_graceful_shutdown_seconds=5,
    )
    env = {**os.environ, **settings_env(settings)}
    env.pop("SDK_METRICS_PORT", None)

    def start_worker() -> Proc:
        n = len(workers)
        worker = Proc.spawn(
            f"worker{n}", [sys.executable, "worker.py"], env, logs / f"worker{n}.log"
        )
        workers.append(worker)
        procs.append(worker)
        return worker

    for _ in range(3):
        start_worker()
    api_ports = [free_port(), free_port()]
    for i, port in enumerate(api_ports):
        cmd = [sys.executable, "-m", "uvicorn", "starter_api:app", "--host", "127.0.0.1"]
        procs.append(Proc.spawn(f"api{i}", [*cmd, "--port", str(port)], env, logs / f"api{i}.log"))
    token = {"Authorization": f"Bearer {settings.secret('api_token')}"}
    apis = [
        # idle connections are dropped before the API closes them (API_KEEP_ALIVE_SECONDS, 5 s):
        # a request sent on a connection the server is closing fails with "disconnected"
        httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{p}",
            headers=token,
            timeout=90,
            limits=httpx.Limits(keepalive_expiry=2),
        )
        for p in api_ports
    ]
    client = await Client.connect(settings.temporal_target, data_converter=pydantic_data_converter)
    engine = create_engine(cp_url)
    kills: list[dict[str, Any]] = []
    drivers: list[Driver] = []
    try:

        async def healthy(api: httpx.AsyncClient) -> bool:
            try:
                return (await api.get("/health")).status_code == 200
            except httpx.HTTPError:
                return False

        for api in apis:
            await until(f"{api.base_url} healthy", lambda api=api: healthy(api), timeout=90)

        async def pollers() -> bool:
            found = await task_queue_pollers(
                client, settings.temporal_namespace, settings.temporal_task_queue
            )
            return len(found) >= 3

        await until("3 workers polling", pollers, timeout=90)
        stores = await TenantStores.open(load_datamap(DATAMAP))
        try:
            before = {cid: await stores.counts(str(cid)) for cid in report.companies}
        finally:
            await stores.close()
        print(f"topology up in {time.monotonic() - t0:.1f}s")

        # -- the workload, with the kills ---------------------------------------------------
        drivers = [Driver(apis, i, cid) for i, cid in enumerate(sorted(report.companies))]
        rng = random.Random(SEED)
        workload = asyncio.gather(*(d.run() for d in drivers))

        async def killer() -> None:
            for _ in range(KILLS):
                await asyncio.sleep(rng.uniform(2.0, 5.0))
                alive = [w for w in workers if w.proc.poll() is None]
                victim = rng.choice(alive)
                victim.proc.send_signal(signal.SIGKILL)
                code = await asyncio.to_thread(victim.proc.wait, 30)
                async with Sessions(engine)() as session:
                    running = len(
                        (
                            await session.scalars(
                                select(Operation.workflow_id).where(Operation.status == "running")
                            )
                        ).all()
                    )
                replacement = start_worker()
                kills.append(
                    {
                        "at": round(time.monotonic() - t0, 1),
                        "victim": victim.name,
                        "code": code,
                        "replacement": replacement.name,
                        "running_ops": running,
                        "workload_done": workload.done(),
                    }
                )

        await asyncio.wait_for(asyncio.gather(workload, killer()), WAIT + 60)
        print(f"workload done at {time.monotonic() - t0:.1f}s; kills {kills}")
        print("503 answers retried:", [e for d in drivers for e in d.unavailable])

        # -- invariants ---------------------------------------------------------------------
        assert len(kills) == KILLS and all(k["code"] == -signal.SIGKILL for k in kills), kills
        # the kills fell during the workload, with operations in flight
        assert not any(k["workload_done"] for k in kills), kills
        assert sum(1 for k in kills if k["running_ops"] > 0) >= 3, kills

        async with Sessions(engine)() as session:
            rows = (await session.scalars(select(Operation))).all()
        by_tenant = {d.tenant: d for d in drivers}
        retained = {d.tenant for d in drivers if d.scenario in ("full", "legal-hold")}
        purged = {d.company for d in drivers if d.scenario == "purged"}
        # every operation ended, except the deletions in their retention (none stuck)
        for row in rows:
            assert row.tenant_id in by_tenant, row.tenant_id
            if row.kind == "deletion" and row.tenant_id in retained:
                assert row.status == "running" and row.step == "retention", vars(row)
            else:
                assert row.status == "completed", (row.workflow_id, row.status, row.error)
            desc = await client.get_workflow_handle(row.workflow_id, run_id=row.run_id).describe()
            assert desc.status is not None
            assert desc.status.name.lower() == row.status, (row.workflow_id, desc.status)
        kinds = Counter(row.kind for row in rows)
        scenarios = Counter(d.scenario for d in drivers)
        assert kinds == Counter(
            {
                "onboard": TENANTS,
                "upgrade": scenarios["full"] + scenarios["active"],
                "downgrade": scenarios["full"],
                "export": scenarios["full"] + scenarios["reactivated"] + scenarios["active"],
                "suspend": scenarios["full"] + scenarios["legal-hold"],
                "reactivate": scenarios["full"],
                "deletion": scenarios["full"]
                + scenarios["reactivated"]
                + scenarios["legal-hold"]
                + scenarios["purged"],
            }
        ), kinds

        # tenant states, billing, the deletion's retention, the purged tenants' certificates
        served = (await apis[0].get("/certificates/keys")).json()["keys"]
        public_keys = {
            key_id(k): k for k in (load_public_key(entry["public_key"]) for entry in served)
        }
        purge_due = timedelta(days=settings.soft_delete_retention_days)
        for d in drivers:
            tenant = (await apis[0].get(f"/tenants/{d.tenant}")).json()
            deleted = ("full", "legal-hold", "purged")
            final = "DELETED" if d.scenario in deleted else "ACTIVE"
            assert tenant["state"] == final, (d.tenant, d.scenario, tenant)
            if d.scenario == "purged":
                assert tenant["purged_at"] is not None, tenant
                cert = await apis[1].get(f"/tenants/{d.tenant}/deletion-certificate")
                assert cert.status_code == 200, cert.text
                checked = verify(cert.json(), public_keys)
                assert checked.valid, (d.tenant, checked.problems)
                assert cert.json()["document"]["retention_waived"]["by"] == "dpo@topology.io"
            elif final == "DELETED":
                assert tenant["purged_at"] is None and tenant["legal_hold"] == (
                    d.scenario == "legal-hold"
                ), tenant
                deletion = [r for r in rows if r.tenant_id == d.tenant and r.kind == "deletion"]
                scheduled = _parse(tenant["purge_scheduled_at"])
                assert abs(scheduled - (deletion[0].started_at + purge_due)) < timedelta(
                    minutes=1
                ), (tenant, deletion[0].started_at)
                cert = await apis[1].get(f"/tenants/{d.tenant}/deletion-certificate")
                assert cert.status_code in (404, 409), cert.text  # no purge, no certificate
            else:
                assert tenant["plan"] == ("professional" if d.scenario == "active" else "starter")
            assert d.subscription is not None
            item = stripe.subscriptions[d.subscription]["items"]["data"][0]["id"]
            mine = journal_of(stripe.mutations(), d.tenant)
            executed = [e for e in mine if not e.replayed and 200 <= e.status < 300]
            got = [(e.method, e.path, *key_parts(e)) for e in executed]
            assert got == expected_billing(d, item), (d.tenant, d.scenario, got)
            # a retry after a kill may replay a call: with the key of an executed one
            sent = {e.idempotency_key for e in executed}
            assert all(e.idempotency_key in sent for e in mine if e.replayed), d.tenant
        assert len({e.idempotency_key for e in stripe.mutations()}) == sum(
            len(expected_billing(d, "-")) for d in drivers
        )

        # purged tenants have 0 rows and files in every store; every other tenant's data is
        # untouched (nothing purged before its retention, nothing of a neighbour)
        stores = await TenantStores.open(load_datamap(DATAMAP))
        try:
            after = {cid: await stores.counts(str(cid)) for cid in report.companies}
        finally:
            await stores.close()
        for cid, counts in after.items():
            if cid in purged:
                assert all(not any(c.values()) for c in counts.values()), (cid, counts)
                assert any(any(c.values()) for c in before[cid].values()), cid
            else:
                assert counts == before[cid], cid
                assert counts["app.companies"]["rows"] == 1

        # both APIs' /metrics equal the operations table
        table = Counter((r.kind, r.status) for r in rows)
        for api in apis:
            totals = metric_totals((await api.get("/metrics")).text)
            for kind in kinds:
                started = totals[("lifecycle_operations_started_total", (("operation", kind),))]
                assert started == kinds[kind], (kind, started)
                running = totals[("lifecycle_operations_running", (("operation", kind),))]
                assert running == table[(kind, "running")], (kind, running)
                for outcome in ("completed", "failed", "cancelled"):
                    labels = (("operation", kind), ("outcome", outcome))
                    finished = totals[("lifecycle_operations_finished_total", labels)]
                    assert finished == table[(kind, outcome)], (kind, outcome, finished)
        print(f"invariants checked at {time.monotonic() - t0:.1f}s")
    except BaseException:
        print(f"FAILED at {time.monotonic() - t0:.1f}s; kills: {kills}")
        for d in drivers:
            print(f"  {d.tenant} {d.scenario}: {d.steps}")
        await _print_stuck(client)
        kept = Path(__file__).resolve().parents[2] / "test-artifacts" / "topology-logs"
        shutil.rmtree(kept, ignore_errors=True)
        shutil.copytree(logs, kept)  # the process logs outlive pytest's temporary directory
        print(f"process logs kept in {kept}")
        for p in procs:
            if p.name != "temporal":
                print(p.tail())
        raise
    finally:
        for api in apis:
            await api.aclose()
        await engine.dispose()


async def _print_stuck(client: Client) -> None:
    """Each running workflow but the retention waits: its pending activities (type, state,
    attempt, last failure) and the last events of its history, to see where it waits."""
    async for wf in client.list_workflows("ExecutionStatus='Running'"):
        handle = client.get_workflow_handle(wf.id, run_id=wf.run_id)
        desc = await handle.describe()
        pending = desc.raw_description.pending_activities
        if wf.workflow_type == "DeletionWorkflow" and not pending:
            continue
        print(f"  running {wf.id} ({wf.workflow_type})")
        for a in pending:
            print(
                f"    pending {a.activity_type.name}: state {a.state}, attempt {a.attempt}, "
                f"last failure {a.last_failure.message!r}"
            )
        events = [e async for e in handle.fetch_history_events()]
        for e in events[-6:]:
            print(f"    event {e.event_id} {e.WhichOneof('attributes')}")


def _parse(value: str) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(value.replace("Z", "+00:00"))
