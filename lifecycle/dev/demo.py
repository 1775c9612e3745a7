"""The main job: every lifecycle operation run against the sample SaaS application
(``lifecycle/dev/adtech``) on the running stack, with a Rich summary of each step's outcome.

Run by ``tenantctl dev --demo`` (``make run``) once the stack is up, or by ``tenantctl demo``
against a running stack. Each step picks tenants by their current state, so a second run on
the same ``.data/`` onboards nobody twice and carries on with the tenants still available.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import io
import json
import subprocess
import time
import zipfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.config import Settings
from lifecycle.dev.devserver import temporal_cli
from lifecycle.domain.certificate import key_id, load_public_key, verify
from lifecycle.domain.deletion import DeleteRequest, PurgeNowRequest
from lifecycle.domain.errors import LifecycleError
from lifecycle.domain.onboarding import OnboardRequest
from lifecycle.domain.operations import OperationKind, workflow_id
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from lifecycle.domain.tenants import TenantView

S = TenantState


@dataclass
class Step:
    """One line of the summary."""

    tenant: str
    operation: str
    outcome: str = "not run"
    seconds: float = 0.0
    workflow_id: str | None = None
    ok: bool = False
    erasure: dict[str, Any] | None = None  # the erasure step's counts and verdict


@dataclass
class Demo:
    """The main job's state: the client, the sample companies and the steps run so far."""

    lc: LifecycleClient
    console: Console
    companies: dict[str, Any] = field(default_factory=dict)  # tenant id -> SampleCompany
    steps: list[Step] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    async def run(
        self, tenant: str, operation: str, action: Callable[[Step], Awaitable[str]]
    ) -> Step:
        """Run ``action`` as one summary line; a domain error is an outcome, not a crash."""
        step = Step(tenant, operation)
        self.used.add(tenant)
        t0 = time.monotonic()
        try:
            step.outcome = await action(step)
            step.ok = True
        except LifecycleError as exc:
            step.outcome = f"{type(exc).__name__}: {exc.detail}"
        except Exception as exc:  # the demo reports every failure and goes on
            step.outcome = f"failed: {type(exc).__name__}: {exc}"
        step.seconds = time.monotonic() - t0
        self.steps.append(step)
        colour = "green" if step.ok else "yellow"
        self.console.print(f"[{colour}]{operation:<28}[/{colour}] {tenant:<28} {step.outcome}")
        return step

    def not_run(self, operation: str, reason: str) -> None:
        """Report ``operation`` as not run (never counted as expected)."""
        self.steps.append(Step("-", operation, outcome=f"not run: {reason}"))
        self.console.print(f"[yellow]{operation:<28}[/yellow] {'-':<28} not run: {reason}")

    async def pick(self, predicate: Callable[[TenantView], bool]) -> TenantView | None:
        """The first sample tenant not used by an earlier step that matches ``predicate``."""
        for tenant_id in self.companies:
            if tenant_id in self.used:
                continue
            tenant = await self.lc.get_tenant(tenant_id)
            if predicate(tenant):
                return tenant
        return None

    async def wait_state(self, tenant_id: str, state: TenantState, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while (await self.lc.get_tenant(tenant_id)).state is not state:
            if time.monotonic() > deadline:
                raise TimeoutError(f"tenant {tenant_id} did not reach {state} in {timeout:.0f}s")
            await asyncio.sleep(0.2)


async def onboard_all(demo: Demo) -> None:
    """Onboard every sample company as a tenant (data key = company id) with its usage."""
    for company in demo.companies.values():
        if await demo.lc.repository.exists(company.tenant_id):
            continue

        async def onboard(step: Step, c: Any = company) -> str:
            started = await demo.lc.onboarding.onboard_tenant(
                OnboardRequest(
                    tenant_id=c.tenant_id,
                    name=c.name,
                    email=c.email,
                    plan=c.plan,
                    data_key=c.data_key,
                ),
                actor="demo",
            )
            step.workflow_id = started.workflow_id
            result = await demo.lc.core.handle(started.workflow_id).result()
            await demo.lc.plan_changes.record_usage(c.tenant_id, c.usage)
            return f"{result['state']} on {result['plan']}, usage {c.usage}"

        await demo.run(company.tenant_id, "onboard + usage", onboard)
    demo.used.clear()


async def upgrade(demo: Demo) -> None:
    tenant = await demo.pick(lambda t: t.state is S.ACTIVE and t.plan == "starter")
    if tenant is None:
        demo.not_run("upgrade", "no ACTIVE tenant on starter left")
        return

    async def act(step: Step) -> str:
        started = await demo.lc.plan_changes.upgrade_tenant(
            tenant.tenant_id, "professional", "demo"
        )
        step.workflow_id = started.workflow_id
        await demo.lc.core.handle(started.workflow_id).result()
        after = await demo.lc.get_tenant(tenant.tenant_id)
        return f"{tenant.plan} -> {after.plan}, users limit {after.entitlements['users']}"

    await demo.run(tenant.tenant_id, "upgrade", act)


async def downgrades(demo: Demo) -> None:
    """One downgrade refused because usage exceeds the target, one scheduled at period end."""
    plans = demo.lc.settings.plans.names()

    async def lower_plans(t: TenantView) -> tuple[str | None, str | None]:
        """(a lower plan its usage exceeds, the highest lower plan its usage fits)."""
        refused = allowed = None
        if t.state is S.ACTIVE and not t.pending_plan_change:
            for target in reversed(plans[: plans.index(t.plan)]):
                if (await demo.lc.plan_changes.downgrade_preview(t.tenant_id, target)).allowed:
                    allowed = allowed or target
                else:
                    refused = refused or target
        return refused, allowed

    refuse_done = schedule_done = False
    for tenant_id in demo.companies:
        if tenant_id in demo.used or (refuse_done and schedule_done):
            continue
        tenant = await demo.lc.get_tenant(tenant_id)
        refused, allowed = await lower_plans(tenant)
        if refused and not refuse_done:
            refuse_done = True

            async def refuse(step: Step, t: TenantView = tenant, to: str = refused) -> str:
                await demo.lc.plan_changes.downgrade_tenant(t.tenant_id, to, actor="demo")
                raise AssertionError(f"downgrade {t.plan} -> {to} was accepted")

            step = await demo.run(tenant_id, "downgrade refused for usage", refuse)
            step.ok = "UsageExceedsLimits" in step.outcome
        elif allowed and not schedule_done:
            schedule_done = True

            async def schedule(step: Step, t: TenantView = tenant, to: str = allowed) -> str:
                started = await demo.lc.plan_changes.downgrade_tenant(t.tenant_id, to, actor="demo")
                step.workflow_id = started.workflow_id
                for _ in range(100):
                    pending = (await demo.lc.get_tenant(t.tenant_id)).pending_plan_change
                    if pending:
                        return f"{t.plan} -> {to} at {pending.get('effective_at')}"
                    await asyncio.sleep(0.1)
                return "started, pending change not visible yet"

            await demo.run(tenant_id, "downgrade at period end", schedule)
    if not refuse_done:
        demo.not_run("downgrade refused for usage", "no tenant's usage exceeds a lower plan")
    if not schedule_done:
        demo.not_run("downgrade at period end", "no tenant's usage fits a lower plan")


async def export(demo: Demo, settings: Settings) -> None:
    """Export a tenant, download the ZIP and check its SHA-256 and row counts at the source."""
    from lifecycle.dev.adtech.counts import company_rows
    from lifecycle.dev.adtech.env import app_urls

    tenant = await demo.pick(lambda t: t.state is S.ACTIVE)
    if tenant is None:
        demo.not_run("GDPR export + verify", "no ACTIVE tenant left")
        return

    async def act(step: Step) -> str:
        started = await demo.lc.exports.export_tenant(tenant.tenant_id, actor="demo")
        step.workflow_id = started.workflow_id
        await demo.lc.core.handle(started.workflow_id).result()
        view = await demo.lc.exports.get_export(started.export_id)
        url = view.download_url or ""
        if url.startswith("/"):
            url = f"http://{settings.api_host}:{settings.api_port}{url}"
        async with httpx.AsyncClient(timeout=120) as http:
            body = (await http.get(url)).raise_for_status().content
        digest = hashlib.sha256(body).hexdigest()
        if digest != view.sha256:
            raise AssertionError(f"downloaded SHA-256 {digest} != recorded {view.sha256}")
        manifest = json.loads(zipfile.ZipFile(io.BytesIO(body)).read("manifest.json"))
        exported: collections.Counter[str] = collections.Counter()
        for entry in manifest["files"]:  # a large table's parts are members of one store
            if "rows" in entry:
                exported[entry["store"].split(".")[-1]] += entry["rows"]
        source = await company_rows(
            app_urls(settings.data_dir)["APP_DATABASE_URL"], int(tenant.data_key)
        )
        mismatched = {t: (exported.get(t), n) for t, n in source.items() if exported.get(t) != n}
        if mismatched:
            raise AssertionError(f"row counts differ from the source: {mismatched}")
        return (
            f"{len(body) / 1e6:.1f} MB ZIP, SHA-256 {digest[:12]}... verified, "
            f"{sum(source.values())} rows match the source"
        )

    await demo.run(tenant.tenant_id, "GDPR export + verify", act)


async def suspend_and_reactivate(demo: Demo) -> None:
    tenant = await demo.pick(lambda t: t.state is S.ACTIVE and not t.pending_plan_change)
    if tenant is None:
        demo.not_run("suspend + reactivate", "no ACTIVE tenant without a pending change left")
        return

    async def act(step: Step) -> str:
        started = await demo.lc.suspension.suspend_tenant(
            tenant.tenant_id, SuspendRequest(reason="demo: payment review"), actor="demo"
        )
        step.workflow_id = started.workflow_id
        await demo.lc.core.handle(started.workflow_id).result()
        started = await demo.lc.reactivation.reactivate_tenant(
            tenant.tenant_id, ReactivateRequest(), "demo"
        )
        await demo.lc.core.handle(started.workflow_id).result()
        after = await demo.lc.get_tenant(tenant.tenant_id)
        return f"SUSPENDED -> {after.state.value} on {after.plan}"

    await demo.run(tenant.tenant_id, "suspend + reactivate", act)


async def delete_and_reactivate_by_cli(demo: Demo, settings: Settings) -> None:
    """Soft delete, then reactivate with the ``temporal`` CLI's signal (as an operator)."""
    tenant = await demo.pick(lambda t: t.state is S.ACTIVE and not t.pending_plan_change)
    if tenant is None:
        demo.not_run(
            "soft delete + CLI reactivate", "no ACTIVE tenant without a pending change left"
        )
        return

    async def act(step: Step) -> str:
        started = await demo.lc.deletion.delete_tenant(
            tenant.tenant_id, DeleteRequest(requested_by="dpo@demo.example"), actor="demo"
        )
        step.workflow_id = started.workflow_id
        await demo.wait_state(tenant.tenant_id, S.DELETED)
        command = [
            temporal_cli(), "workflow", "signal",
            "--address", settings.temporal_target,
            "--namespace", settings.temporal_namespace,
            "--workflow-id", workflow_id(tenant.tenant_id, OperationKind.DELETION),
            "--name", "reactivate",
            "--input", json.dumps({"plan": tenant.plan, "requested_by": "ops@demo.example"}),
        ]  # fmt: skip
        done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"temporal workflow signal failed: {done.stderr.strip()}")
        await demo.wait_state(tenant.tenant_id, S.ACTIVE)
        return "DELETED -> ACTIVE by `temporal workflow signal --name reactivate`"

    await demo.run(tenant.tenant_id, "soft delete + CLI reactivate", act)


async def delete_for_good(demo: Demo) -> None:
    tenant = await demo.pick(lambda t: t.state is S.ACTIVE and not t.pending_plan_change)
    if tenant is None:
        demo.not_run("soft delete (retention)", "no ACTIVE tenant without a pending change left")
        return

    async def act(step: Step) -> str:
        started = await demo.lc.deletion.delete_tenant(
            tenant.tenant_id,
            DeleteRequest(requested_by="dpo@demo.example", reason="demo: contract ended"),
            actor="demo",
        )
        step.workflow_id = started.workflow_id
        await demo.wait_state(tenant.tenant_id, S.DELETED)
        return f"DELETED, purge scheduled at {started.hard_delete_scheduled_at}"

    await demo.run(tenant.tenant_id, "soft delete (retention)", act)


async def erase(demo: Demo, settings: Settings) -> None:
    """Erasure end to end: soft delete, purge now on a written request, the certificate
    verified offline with the public key of ``GET /certificates/keys``, and the company's rows
    and files (and cache entries, with APP_REDIS_URL) in the sample application counted before
    and after."""
    from lifecycle.dev.adtech.cache import cache_entries
    from lifecycle.dev.adtech.counts import company_rows, storage_usage
    from lifecycle.dev.adtech.env import app_urls

    operation = "erase: delete + purge now + certificate"
    tenant = await demo.pick(lambda t: t.state is S.ACTIVE and not t.pending_plan_change)
    if tenant is None:
        demo.not_run(operation, "no ACTIVE tenant without a pending change left")
        return
    urls = app_urls(settings.data_dir)

    async def counts() -> tuple[int, int, int | None]:
        """Rows, files and cache entries (None when the sample caches nothing)."""
        rows = await company_rows(urls["APP_DATABASE_URL"], int(tenant.data_key))
        usage = await storage_usage(urls["APP_STORAGE_URL"], [tenant.data_key])
        cached = None
        if "APP_REDIS_URL" in urls:
            cached = (await cache_entries(urls["APP_REDIS_URL"], [tenant.data_key]))[
                tenant.data_key
            ]
        return sum(rows.values()), usage[tenant.data_key][0], cached

    async def act(step: Step) -> str:
        rows_before, files_before, cache_before = await counts()
        started = await demo.lc.deletion.delete_tenant(
            tenant.tenant_id,
            DeleteRequest(requested_by="dpo@demo.example", reason="demo: erasure request"),
            actor="demo",
        )
        step.workflow_id = started.workflow_id
        await demo.wait_state(tenant.tenant_id, S.DELETED)
        await demo.lc.deletion.purge_now(
            tenant.tenant_id,
            PurgeNowRequest(
                requested_by="customer@demo.example",
                reason="demo: the customer asked in writing for immediate erasure",
                confirm=tenant.tenant_id,
            ),
            actor="demo",
        )
        await demo.lc.core.handle(started.workflow_id).result()
        certificate = (await demo.lc.deletion.deletion_certificate(tenant.tenant_id)).model_dump(
            mode="json"
        )
        base = f"http://{settings.api_host}:{settings.api_port}"
        async with httpx.AsyncClient(timeout=30) as http:
            served = (await http.get(f"{base}/certificates/keys")).raise_for_status().json()
        keys = [load_public_key(k["public_key"]) for k in served["keys"]]
        result = verify(certificate, {key_id(k): k for k in keys})
        rows_after, files_after, cache_after = await counts()
        step.erasure = {
            "rows_before": rows_before,
            "rows_after": rows_after,
            "files_before": files_before,
            "files_after": files_after,
            "cache_before": cache_before,
            "cache_after": cache_after,
            "certificate_valid": result.valid,
        }
        if not result.valid:
            raise AssertionError(f"certificate does not verify: {'; '.join(result.problems)}")
        if rows_after or files_after or cache_after:
            raise AssertionError(
                f"left after the purge: {rows_after} rows, {files_after} files, "
                f"{cache_after or 0} cache entries"
            )
        cache = "" if cache_before is None else f", cache {cache_before} -> {cache_after}"
        return (
            f"rows {rows_before} -> {rows_after}, files {files_before} -> {files_after}{cache}; "
            f"certificate {result.algorithm} key {result.kid} verified offline"
        )

    await demo.run(tenant.tenant_id, operation, act)


def summary(demo: Demo, settings: Settings) -> Table:
    ui = f"http://127.0.0.1:{settings.temporal_ui_port}/namespaces/{settings.temporal_namespace}"
    table = Table(title="Main job: tenant lifecycle on the sample application")
    for column in ("tenant", "operation", "outcome", "duration", "Web UI"):
        table.add_column(column, overflow="fold")
    for s in demo.steps:
        link = f"{ui}/workflows/{s.workflow_id}" if s.workflow_id else ""
        outcome = s.outcome if s.ok else f"[yellow]{s.outcome}[/yellow]"
        table.add_row(s.tenant, s.operation, outcome, f"{s.seconds:.2f}s", link)
    return table


async def run_demo(
    settings: Settings,
    console: Console,
    tenants: int = 12,
    size_mb: float = 50,
    serving: bool = False,
) -> list[Step]:
    """Load the sample application (``tenants`` + 1 companies, ``size_mb`` MB in all,
    generated once), onboard the first ``tenants`` and run every operation once, print the
    summary and return its steps (a step that could not run is in the list with ``ok``
    False). The last company stays a company without a tenant, for the README's examples
    (they onboard it as ``acme``). ``serving``: the stack keeps running after the summary
    (``tenantctl dev --demo``)."""
    from lifecycle.dev.adtech.sample import load_sample

    console.print("loading the sample application (lifecycle/dev/adtech) ...")
    *companies, spare = await load_sample(
        settings.data_dir, tenants=tenants + 1, size_mb=size_mb, plans=settings.plans
    )
    async with await LifecycleClient.connect(settings) as lc:
        demo = Demo(lc, console, {c.tenant_id: c for c in companies})
        await onboard_all(demo)
        await upgrade(demo)
        await downgrades(demo)
        await export(demo, settings)
        await suspend_and_reactivate(demo)
        await delete_and_reactivate_by_cli(demo, settings)
        await delete_for_good(demo)
        await erase(demo, settings)
    console.print(summary(demo, settings))
    ok = sum(s.ok for s in demo.steps)
    skipped = sum(s.outcome.startswith("not run") for s in demo.steps)
    console.print(
        f"{ok}/{len(demo.steps)} steps as expected"
        + (f", {skipped} not run" if skipped else "")
        + '. Filter the Web UI with TenantId="<tenant>"; the tenant console is at '
        + f"http://{settings.api_host}:{settings.api_port}/console."
        + (" Serving until Ctrl-C." if serving else "")
    )
    console.print(
        f"Company {spare.company_id} ({spare.name}) has no tenant yet: the README's examples "
        f"onboard it as 'acme' with data_key '{spare.data_key}'."
    )
    return demo.steps
