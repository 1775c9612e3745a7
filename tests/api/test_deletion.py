"""Delete, reactivate, suspend, legal hold and the deletion certificate over real HTTP, with
the time-skipping server so the purge runs within the test; ``tenantctl certificate verify``
on the served certificate."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from lifecycle.cli.app import app as cli
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.states import TenantState
from tests.support.api import assert_problem
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import new_tenant, skip_to_result, wait_state


@dataclass
class Served:
    lc: LifecycleClient
    api: httpx.AsyncClient
    env: WorkflowEnvironment

    async def result(self, workflow_id: str) -> dict:
        return await skip_to_result(self.env, self.lc.core.handle(workflow_id))

    async def operations(self, tenant: str) -> list[tuple[str, str | None]]:
        events = (await self.api.get(f"/tenants/{tenant}/events")).json()
        return [(e["operation"], e["to_state"]) for e in events]


@pytest.fixture
async def served(time_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Served]:
    async with running_stack(time_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        yield Served(lc, http, time_env)


async def test_delete_then_reactivate_and_rejections(served: Served) -> None:
    lc, api = served.lc, served.api
    acme = uid("acme")
    await new_tenant(lc, acme, "starter")
    path = f"/tenants/{acme}"
    r = await api.post(f"{path}/delete", json={"requested_by": "dpo", "retention_days": 10})
    assert_problem(r, 422, "retention_days", "greater than or equal to 30")
    r = await api.post(f"{path}/delete", json={"requested_by": "dpo", "retention_days": 91})
    assert_problem(r, 422, "retention_days", "less than or equal to 90")
    assert_problem(await api.post(f"{path}/delete", json={}), 422, "requested_by")
    r = await api.post("/tenants/nobody/delete", json={"requested_by": "dpo"})
    assert_problem(r, 404, "tenant 'nobody' does not exist")
    r = await api.post(f"{path}/reactivate", json={})
    assert_problem(r, 409, f"tenant '{acme}' is ACTIVE; reactivate needs state SUSPENDED or")

    r = await api.post(f"{path}/delete", json={"requested_by": "dpo", "reason": "bye"})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["workflow_id"] == f"tenant-{acme}-deletion" and body["deletion_id"]
    assert body["can_reactivate"] is True and body["retention_days"] == 30
    tenant = await wait_state(lc, acme, TenantState.DELETED)
    assert tenant.purge_scheduled_at.isoformat() == body["hard_delete_scheduled_at"]
    r = await api.post(f"{path}/delete", json={"requested_by": "dpo"})
    assert_problem(r, 409, "is DELETED; delete needs state ACTIVE or SUSPENDED")
    r = await api.post(f"{path}/suspend", json={"reason": "x"})
    assert_problem(r, 409, "is DELETED; suspend needs state ACTIVE")
    r = await api.post(f"{path}/reactivate", json={"plan": "gold"})
    assert_problem(r, 422, "unknown plan 'gold'")
    r = await api.get(f"{path}/deletion-certificate")
    assert_problem(r, 404, "has no deletion certificate", "DELETED")

    r = await api.post(f"{path}/reactivate", json={"plan": "free"})
    assert r.status_code == 202 and r.json()["status"] == "accepted", r.text
    assert_problem(await api.post(f"{path}/reactivate"), 409, "already being reactivated")
    assert (await served.result(body["workflow_id"]))["outcome"] == "reactivated"
    tenant = await lc.get_tenant(acme)
    assert tenant.state is TenantState.ACTIVE and tenant.plan == "free"
    assert tenant.entitlements == lc.settings.plans.get("free").limits.as_dict()
    assert (await served.operations(acme))[-4:] == [
        ("deletion", "DELETING"),
        ("deletion", "DELETED"),
        ("deletion", "REACTIVATING"),
        ("deletion", "ACTIVE"),
    ]


async def test_suspend_and_reactivate(served: Served) -> None:
    lc, api = served.lc, served.api
    acme = uid("acme")
    await new_tenant(lc, acme, "professional")
    assert_problem(await api.post(f"/tenants/{acme}/suspend", json={}), 422, "reason")
    r = await api.post(f"/tenants/{acme}/suspend", json={"reason": "abuse report"})
    assert r.status_code == 202 and r.json()["workflow_id"] == f"tenant-{acme}-suspend"
    assert (await served.result(r.json()["workflow_id"]))["outcome"] == "suspended"
    tenant = await lc.get_tenant(acme)
    assert tenant.state is TenantState.SUSPENDED and set(tenant.entitlements.values()) == {0}
    r = await api.post(f"/tenants/{acme}/suspend", json={"reason": "again"})
    assert_problem(r, 409, "is SUSPENDED; suspend needs state ACTIVE")

    r = await api.post(f"/tenants/{acme}/reactivate")
    assert r.status_code == 202 and r.json()["workflow_id"] == f"tenant-{acme}-reactivate"
    assert (await served.result(r.json()["workflow_id"]))["state"] == "ACTIVE"
    tenant = await lc.get_tenant(acme)
    assert tenant.state is TenantState.ACTIVE and tenant.plan == "professional"
    assert tenant.entitlements == lc.settings.plans.get("professional").limits.as_dict()
    assert (await served.operations(acme))[1:] == [
        ("suspend", "SUSPENDED"),
        ("reactivate", "REACTIVATING"),
        ("reactivate", "ACTIVE"),
    ]


async def test_legal_hold_purge_certificate_and_cli_verify(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lc, api = served.lc, served.api
    acme = uid("acme")
    await new_tenant(lc, acme)
    path = f"/tenants/{acme}"
    r = await api.post(f"{path}/legal-hold", json={"reason": "audit"})  # before any deletion
    assert r.status_code == 202 and r.json()["workflow_id"] is None
    assert (await lc.get_tenant(acme)).legal_hold is True
    wid = (await api.post(f"{path}/delete", json={"requested_by": "dpo"})).json()["workflow_id"]
    await wait_state(lc, acme, TenantState.DELETED)
    await served.env.sleep(timedelta(days=31))
    assert (await lc.get_tenant(acme)).purged_at is None  # the hold outlasts retention
    r = await api.delete(f"{path}/legal-hold")
    assert r.status_code == 202 and r.json()["workflow_id"] == wid
    assert (await served.result(wid))["outcome"] == "purged"
    assert_problem(await api.post(f"{path}/legal-hold"), 409, "was purged at")
    r = await api.post(f"{path}/reactivate")
    assert_problem(r, 409, f"tenant '{acme}' was purged at ")

    cert = (await api.get(f"{path}/deletion-certificate")).json()
    assert cert["document"]["tenant_id"] == acme and cert["algorithm"] == "Ed25519"
    # the public keys are served without a token; the certificate names its key
    keys_url = str(api.base_url).rstrip("/") + "/certificates/keys"
    anonymous = await asyncio.to_thread(httpx.get, keys_url)  # no Authorization header
    keys = anonymous.json()["keys"]
    assert [k["status"] for k in keys] == ["current"] and keys[0]["algorithm"] == "Ed25519"
    assert cert["document"]["kid"] == keys[0]["kid"]
    pem = tmp_path / "public.pem"
    pem.write_text(keys[0]["public_key"])
    file = tmp_path / "cert.json"
    file.write_text(json.dumps(cert))
    # offline, no secret, an empty data dir: only the public key
    monkeypatch.delenv("SIGNING_SECRET", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "cli"))
    args = ["certificate", "verify", str(file), "--public-key", str(pem)]
    ok = CliRunner().invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    assert f"signed by Ed25519 key {keys[0]['kid']}" in ok.output and cert["sha256"] in ok.output
    assert not (tmp_path / "cli").exists()  # no secret and no key created on the way
    by_url = await asyncio.to_thread(
        CliRunner().invoke, cli, ["certificate", "verify", str(file), "--keys-url", keys_url]
    )
    assert by_url.exit_code == 0, by_url.output
    cert["document"]["stores"]["exports"]["before"]["files"] = 7
    file.write_text(json.dumps(cert))
    bad = CliRunner().invoke(cli, args)
    assert bad.exit_code == 1 and "sha256 does not match" in bad.output


async def test_purge_now_over_http_and_the_cli(served: Served) -> None:
    lc, api = served.lc, served.api
    acme = uid("acme")
    await new_tenant(lc, acme)
    path = f"/tenants/{acme}"
    body = {"requested_by": "dpo@acme.io", "reason": "letter of 2025-07-02", "confirm": acme}
    assert_problem(await api.post(f"{path}/purge", json=body), 409, "is ACTIVE; purge needs")
    wid = (await api.post(f"{path}/delete", json={"requested_by": "dpo"})).json()["workflow_id"]
    await wait_state(lc, acme, TenantState.DELETED)
    no_confirm = {k: v for k, v in body.items() if k != "confirm"}
    assert_problem(await api.post(f"{path}/purge", json=no_confirm), 422, "confirm")
    r = await api.post(f"{path}/purge", json={**body, "confirm": acme.upper()})
    assert_problem(r, 422, f"confirm must repeat the tenant id '{acme}' exactly")
    await api.post(f"{path}/legal-hold", json={"reason": "audit"})
    assert_problem(await api.post(f"{path}/purge", json=body), 409, "under legal hold")
    await api.delete(f"{path}/legal-hold")
    # at once, with no wait for the row: the release is a signal the workflow sees before the
    # purge's update (the row followed later and, checked first, answered 409 under load)
    assert (await lc.get_tenant(acme)).purged_at is None

    env = {"API_TOKEN": lc.settings.secret("api_token")}
    args = ["tenants", "purge", acme, "--confirm", acme, "--reason", "letter of 2025-07-02"]
    args += ["--requested-by", "dpo@acme.io", "--api", str(api.base_url)]
    out = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert out.exit_code == 0, out.output
    assert "waived" in out.output and "by dpo@acme.io" in out.output
    assert (await served.result(wid))["outcome"] == "purged"
    assert_problem(await api.post(f"{path}/purge", json=body), 409, "was purged at")
    again = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert again.exit_code == 1 and "was purged at" in again.output

    document = (await api.get(f"{path}/deletion-certificate")).json()["document"]
    waived = document["retention_waived"]
    assert waived["by"] == "dpo@acme.io" and waived["reason"] == "letter of 2025-07-02"
    scheduled = (await lc.get_tenant(acme)).purge_scheduled_at
    assert datetime.fromisoformat(document["purged_at"]) < scheduled  # retention waived
    events = (await api.get(f"{path}/events")).json()
    audited = [e for e in events if e["operation"] == "retention-waived"]
    assert len(audited) == 1 and audited[0]["actor"] == "dpo@acme.io"


async def test_legal_hold_answers_503_when_the_deletion_workflow_cannot_answer(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The topology test saw ``POST /legal-hold`` answer 500 when the deletion workflow could
    not answer its ``progress`` query (its task failing on a replaying worker). Provoked here
    with a running workflow under the deletion id that has no such query: a 503 with
    Retry-After, and nothing written."""
    from temporalio.client import Client

    from lifecycle.domain.exports import ExportRef, RetentionInput
    from lifecycle.domain.tenants import TransitionInput
    from workflows.export import ExportRetentionWorkflow

    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as api:
        tenant = uid("mute")
        await new_tenant(lc, tenant)
        wid = f"tenant-{tenant}-deletion"
        for to_state in (TenantState.DELETING, TenantState.DELETED):
            await lc.repository.transition(
                TransitionInput(
                    tenant_id=tenant,
                    from_states=[TenantState.ACTIVE, TenantState.DELETING],
                    to_state=to_state,
                    operation="deletion",
                    workflow_id=wid,
                )
            )
        client: Client = lc.temporal
        mute = await client.start_workflow(
            ExportRetentionWorkflow.run,
            RetentionInput(
                ref=ExportRef(tenant_id=tenant, export_id="0" * 32), delete_after_days=30
            ),
            id=wid,
            task_queue=lc.settings.temporal_task_queue,
        )
        try:
            r = await api.post(f"/tenants/{tenant}/legal-hold", json={"reason": "litigation"})
            assert_problem(r, 503, "did not answer")
            assert r.headers["retry-after"] == "5"
            assert (await lc.get_tenant(tenant)).legal_hold is False
        finally:
            await mute.terminate()
