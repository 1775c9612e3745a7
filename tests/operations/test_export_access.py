"""Export links after access is revoked (issue 13, section 4), on the dev server with the real
suspension, reactivation and deletion workflows: a suspended or soft-deleted tenant's signed
links answer 403 naming its state, the API issues no new ones, and ``GET
/exports/{id}/archive`` serves the archive to a token with the ``dpo`` role, audited."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from lifecycle.api.auth import create_token
from lifecycle.domain.deletion import DeleteRequest
from lifecycle.domain.reactivation import ReactivateRequest
from lifecycle.domain.states import TenantState
from lifecycle.domain.suspension import SuspendRequest
from tests.operations.test_export import wait_export
from tests.support.export_helpers import make_app
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import new_tenant, wait_state


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_links_are_refused_once_access_is_revoked_and_the_dpo_seam_is_audited(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    app = await make_app(tmp_path, projects_per_org=2)
    tokens_file = tmp_path / "tokens.toml"
    tokens = {
        "dpo": create_token(tokens_file, "privacy-office", "dpo"),
        "operator": create_token(tokens_file, "support-desk", "operator"),
    }
    settings = make_settings(tmp_path, data_map_path=app.datamap, api_tokens_file=tokens_file)
    tenant = uid("revoked")
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        await new_tenant(lc, tenant, data_key="2")
        export_id = (await lc.exports.export_tenant(tenant, "tables")).export_id
        view = await wait_export(http, export_id)
        link = view["download_url"]
        async with httpx.AsyncClient() as anonymous:
            assert (await anonymous.get(link)).status_code == 200

            await lc.suspension.suspend_tenant(tenant, SuspendRequest(reason="abuse report"))
            await wait_state(lc, tenant, TenantState.SUSPENDED)
            refused = await anonymous.get(link)
            assert refused.status_code == 403
            assert refused.headers["content-type"] == "application/problem+json"
            problem = refused.json()
            assert problem["title"] == "Access revoked"
            assert f"tenant '{tenant}' is SUSPENDED" in problem["detail"]
            # no new link from the API, and the reason instead
            for shown in [
                (await http.get(f"/exports/{export_id}")).json(),
                (await http.get(f"/tenants/{tenant}/exports")).json()[0],
            ]:
                assert shown["status"] == "completed" and shown["sha256"] == view["sha256"]
                assert shown["download_url"] is None and shown["expires_at"] is None
                assert "is SUSPENDED" in shown["access_revoked"]

            # an authenticated download by a token with the dpo role (issue 14) still works,
            # audited; an operator's token is refused
            archive_url = f"/exports/{export_id}/archive"
            refused = await http.get(archive_url, headers=bearer(tokens["operator"]))
            assert refused.status_code == 403 and refused.json()["needed_role"] == "dpo"
            served = await http.get(archive_url, headers=bearer(tokens["dpo"]))
            assert served.status_code == 200, served.text
            assert hashlib.sha256(served.content).hexdigest() == view["sha256"]
            assert served.headers["x-content-sha256"] == view["sha256"]
            assert f"{tenant}-export-{export_id}.zip" in served.headers["content-disposition"]
            audit = (await lc.repository.events(tenant))[-1]
            assert (audit.operation, audit.actor) == ("export-downloaded", "privacy-office")
            assert audit.detail["export_id"] == export_id and audit.detail["role"] == "dpo"
            assert audit.detail["tenant_state"] == "SUSPENDED"

            # access restored: the link works again; then soft deletion revokes it for good
            started = await lc.reactivation.reactivate_tenant(tenant, ReactivateRequest())
            await lc.core.handle(started.workflow_id).result()
            assert (await anonymous.get(link)).status_code == 200
            assert (await http.get(f"/exports/{export_id}")).json()["download_url"]
            await lc.deletion.delete_tenant(tenant, DeleteRequest(requested_by="dpo@corp.io"))
            await wait_state(lc, tenant, TenantState.DELETED)
            refused = await anonymous.get(link)
            assert refused.status_code == 403 and "is DELETED" in refused.json()["detail"]
            shown = (await http.get(f"/exports/{export_id}")).json()
            assert shown["download_url"] is None and "is DELETED" in shown["access_revoked"]
            # the archive is untouched until the purge; only the links are refused, and the
            # dpo still downloads it from a DELETED tenant
            served = await http.get(f"/exports/{export_id}/archive", headers=bearer(tokens["dpo"]))
            assert served.status_code == 200
            assert hashlib.sha256(served.content).hexdigest() == view["sha256"]
            assert (await lc.repository.events(tenant))[-1].detail["tenant_state"] == "DELETED"
