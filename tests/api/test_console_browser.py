"""The tenant console (issue 18) in a real headless browser: Debian's chromium driven by
Playwright, every request to another host refused, each wait bounded.

An admin signs in (a wrong token first), searches and filters the list, opens a tenant,
suspends it through the confirmation and sees the timeline show the suspension by its token's
name; a form without the CSRF token is refused. A viewer sees no action buttons and its forged
POST (with a valid CSRF token) is refused. An upgrade shows in the timeline; an export runs
to its download, whose SHA-256 matches the API's and the manifest's; a soft delete shows its
retention and is reactivated; a legal hold keeps purge-now away until released; the purge's
certificate verifies; the overview counts tenants, charts operations and lists purges due and
failures. Screenshots go to TEST_ARTIFACTS/console (default ``test-artifacts/console``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from lifecycle.api.auth import token_hash
from lifecycle.client.lifecycle import LifecycleClient
from lifecycle.domain.certificate import key_id, load_public_key, verify
from lifecycle.domain.states import TenantState
from lifecycle.domain.tenants import OperationUpdate
from lifecycle.persistence.tables import Tenant
from tests.support.api import wait_operation
from tests.support.export_helpers import make_app, read_archive
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.tenant_data import wait_state

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = (
    Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "console"
)
ADMIN, VIEWER = "test-token", "viewer-token-1"
WAIT_MS = 20_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)


@dataclass(frozen=True)
class Stack:
    """The API over HTTP (admin token) and the LifecycleClient behind it."""

    http: httpx.AsyncClient
    lc: LifecycleClient


@pytest.fixture
async def stack(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[Stack]:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        f'[[tokens]]\nname = "support-viewer"\nrole = "viewer"\nsha256 = "{token_hash(VIEWER)}"\n'
    )
    app = await make_app(tmp_path)  # the data an export archives and a purge erases
    settings = make_settings(
        tmp_path, api_token=ADMIN, api_tokens_file=tokens, data_map_path=app.datamap
    )
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        yield Stack(http, lc)


@pytest.fixture
def api(stack: Stack) -> httpx.AsyncClient:
    return stack.http


async def onboard(
    http: httpx.AsyncClient, tenant: str, name: str, data_key: str | None = None
) -> None:
    body = {"tenant_id": tenant, "name": name, "email": "o@x.io", "data_key": data_key}
    r = await http.post("/tenants", json=body)
    assert r.status_code == 202, r.text
    assert await wait_operation(http, r.json()["workflow_id"]) == "completed"


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        await chromium.close()


async def new_page(browser: Any, refused: list[str], width: int = 1280) -> Any:
    from playwright.async_api import Route

    async def local_only(route: Route) -> None:
        if route.request.url.startswith("http://127.0.0.1:"):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    context = await browser.new_context(viewport={"width": width, "height": 1400})
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    await page.route("**/*", local_only)
    return page


async def sign_in(page: Any, base: str, token: str) -> None:
    """Sign in with the keyboard only: the token field, typing, Enter."""
    await page.goto(f"{base}/console")
    await page.focus("#token")
    await page.keyboard.type(token)
    await page.keyboard.press("Enter")


#: Problems of a page for keyboard and screen-reader users, and text under WCAG AA contrast
#: (4.5:1, 3:1 from 18.66 px bold or 24 px): a list of strings, empty when none.
ACCESSIBILITY_PROBLEMS = r"""() => {
  const problems = [];
  if (!document.documentElement.lang) problems.push("no lang on <html>");
  for (const el of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
    if (!el.labels.length && !el.getAttribute("aria-label")) problems.push("unlabelled " + el.name);
  }
  for (const el of document.querySelectorAll("[role=img]")) {
    if (!el.getAttribute("aria-label") && !el.getAttribute("aria-labelledby"))
      problems.push("image without a text alternative");
  }
  const rgb = (c) => c.match(/[\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!walker.currentNode.textContent.trim() || !el.getClientRects().length) continue;
    if (el.closest("svg, option")) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || Number(style.opacity) < 1) continue;
    const [a, b] = [lum(rgb(style.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const needed = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < needed) problems.push(`contrast ${ratio.toFixed(2)} < ${needed}: ${text}`);
  }
  return problems;
}"""


async def assert_accessible(page: Any) -> None:
    """The page has no ACCESSIBILITY_PROBLEMS, and its first Tab stop (once reloaded) is the
    skip link."""
    assert await page.evaluate(ACCESSIBILITY_PROBLEMS) == []
    await page.reload()
    await page.keyboard.press("Tab")
    assert await page.evaluate("document.activeElement.textContent") == "Skip to content"


async def test_admin_signs_in_filters_suspends_and_sees_the_timeline(
    api: httpx.AsyncClient, browser: Any
) -> None:
    base = str(api.base_url).rstrip("/")
    acme, other = uid("acme"), uid("zeta")
    await onboard(api, acme, "Acme Rockets")
    await onboard(api, other, "Zeta Works")
    refused: list[str] = []
    page = await new_page(browser, refused)

    await sign_in(page, base, "not-a-token")
    assert "unknown token" in await page.inner_text("[role=alert]")
    assert await page.context.cookies() and not any(
        c["name"] == "console_session" for c in await page.context.cookies()
    )

    await sign_in(page, base, ADMIN)
    await page.wait_for_url(f"{base}/console/tenants")
    assert await page.inner_text("[data-testid=who]") == "api"
    session = next(c for c in await page.context.cookies() if c["name"] == "console_session")
    assert session["httpOnly"] and session["sameSite"] == "Strict" and ADMIN not in session["value"]

    await page.fill("#q", "acme rock")  # a part of the name, any case
    await page.select_option("#state", "ACTIVE")
    await page.click("text=Filter")
    await page.wait_for_selector(f"a:text-is('{acme}')")
    assert await page.locator(f"a:text-is('{other}')").count() == 0
    assert int(await page.locator("[data-testid=count-ACTIVE] span").inner_text()) >= 2
    await page.fill("#q", other)
    await page.click("text=Filter")
    await page.wait_for_selector(f"a:text-is('{other}')")
    assert await page.locator(f"a:text-is('{acme}')").count() == 0
    await page.screenshot(path=artifact("console-tenants.png"))
    await assert_accessible(page)

    await page.goto(f"{base}/console/tenants/{acme}")
    assert await page.inner_text("[data-testid=state]") == "active"
    await page.click("[data-testid=actions] >> text=Suspend")
    assert "Revokes the tenant's access" in await page.inner_text("[data-testid=explains]")
    await page.fill("#reason", "card declined twice")
    await page.click("[data-testid=confirm]")
    await page.wait_for_url(f"{base}/console/tenants/{acme}?*")
    assert "accepted" in await page.inner_text("[data-testid=notice]")
    # the page refreshes itself while the operation runs; reload until the row is there
    for _ in range(40):
        timeline = await page.inner_text("[data-testid=timeline]")
        if "suspend" in timeline:
            break
        await page.wait_for_timeout(500)
        await page.reload()
    assert "suspend" in timeline and "by api" in timeline
    await page.wait_for_function(
        "document.querySelector('[data-testid=state]').innerText === 'suspended'",
        polling=500,
    )
    await page.locator("[data-testid=timeline] summary").first.click()
    assert "card declined twice" in await page.inner_text("[data-testid=timeline]")
    await page.screenshot(path=artifact("console-tenant.png"), full_page=True)
    events = (await api.get(f"/tenants/{acme}/events")).json()
    assert [(e["operation"], e["actor"]) for e in events][-1] == ("suspend", "api")

    # a form without its CSRF token is refused, and nothing happens
    r = await page.request.post(
        f"{base}/console/tenants/{acme}/actions/reactivate",
        form={"reason": "no csrf"},
        max_redirects=0,
    )
    assert r.status == 403 and "CSRF" in await r.text()
    assert (await api.get(f"/tenants/{acme}")).json()["state"] == "SUSPENDED"

    phone = await new_page(browser, refused, width=390)
    await phone.context.add_cookies(await page.context.cookies())
    await phone.goto(f"{base}/console/tenants/{acme}")
    await phone.screenshot(path=artifact("console-tenant-phone.png"))
    assert refused == []


async def test_viewer_sees_no_actions_and_its_forged_post_is_refused(
    api: httpx.AsyncClient, browser: Any
) -> None:
    base = str(api.base_url).rstrip("/")
    tenant = uid("view")
    await onboard(api, tenant, "Viewed Co")
    refused: list[str] = []
    page = await new_page(browser, refused)
    await sign_in(page, base, VIEWER)
    await page.wait_for_url(f"{base}/console/tenants")
    await page.goto(f"{base}/console/tenants/{tenant}")
    assert await page.inner_text("[data-testid=who]") == "support-viewer"
    await page.wait_for_selector("[data-testid=no-actions]")
    assert await page.locator("[data-testid=actions] a").count() == 0
    assert await page.locator("[data-testid=actions] button").count() == 0
    await page.screenshot(path=artifact("console-viewer.png"))
    await page.goto(f"{base}/console/overview")  # reading the overview is a viewer's right
    assert int(await page.inner_text("[data-testid=state-ACTIVE] .n")) >= 1
    await page.goto(f"{base}/console/tenants/{tenant}")

    csrf = await page.get_attribute("input[name=csrf]", "value")
    r = await page.request.post(
        f"{base}/console/tenants/{tenant}/actions/suspend",
        form={"csrf": csrf, "reason": "forged"},
        max_redirects=0,
    )
    assert r.status == 403 and "needs role &#39;operator&#39;" in await r.text()
    r = await page.request.get(f"{base}/console/tenants/{tenant}/actions/suspend")
    assert r.status == 403
    r = await page.request.get(f"{base}/console/tenants/{tenant}/certificate")
    assert r.status == 403 and "needs role &#39;dpo&#39;" in await r.text()
    assert (await api.get(f"/tenants/{tenant}")).json()["state"] == "ACTIVE"
    assert [e["operation"] for e in (await api.get(f"/tenants/{tenant}/events")).json()] == [
        "onboard"
    ]
    # the console's cookie is no key to the API, and a bearer token none to the console
    r = await page.request.get(f"{base}/tenants/{tenant}")
    assert r.status == 401
    r = await api.get(f"/console/tenants/{tenant}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/console/sign-in"
    assert refused == []


async def confirm(page: Any, base: str, tenant: str, action: str) -> None:
    """Click ``action`` (its button text) on the tenant's page, confirm it on the confirmation
    page and land back on the tenant's page."""
    await page.click(f"[data-testid=actions] >> text={action}")
    await page.wait_for_selector("[data-testid=explains]")
    await page.click("[data-testid=confirm]")
    await page.wait_for_url(f"{base}/console/tenants/{tenant}?*")
    assert "accepted" in await page.inner_text("[data-testid=notice]")


async def until_text(page: Any, selector: str, text: str, tries: int = 60) -> str:
    """Reload until ``selector``'s text contains ``text`` (the page refreshes itself only
    while an operation runs); returns the text. Bounded: ``tries`` times 0.5 s."""
    for _ in range(tries):
        found = await page.inner_text(selector) if await page.locator(selector).count() else ""
        if text in found:
            return found
        await page.wait_for_timeout(500)
        await page.reload()
    raise AssertionError(f"{selector} never showed {text!r}; last: {found!r}")


async def test_upgrade_timeline_export_download_and_overview(stack: Stack, browser: Any) -> None:
    api, base = stack.http, str(stack.http.base_url).rstrip("/")
    tenant, failing, due = uid("grow"), uid("fail"), uid("gone")
    await onboard(api, tenant, "Grow Co", data_key="1")  # org 1 of the sample app's data
    for t in (failing, due):
        await onboard(api, t, t.title())
    refused: list[str] = []
    page = await new_page(browser, refused)
    await sign_in(page, base, ADMIN)
    await page.wait_for_url(f"{base}/console/tenants")

    # upgrade: the confirmation shows the new limits, the timeline the upgrade by the token
    await page.goto(f"{base}/console/tenants/{tenant}")
    await page.click("[data-testid=actions] >> text=Upgrade to professional")
    assert "Provisions the higher plan" in await page.inner_text("[data-testid=explains]")
    assert "users" in await page.inner_text("[data-testid=limits]")
    prices = await page.inner_text("[data-testid=prices]")
    assert "→ 99.00" in prices and "Stripe proration: create_prorations" in prices
    # the plan-change preview: the plans file's rule, and no amount made up in limited mode
    assert "immediate" in await page.inner_text("[data-testid=rule]")
    amount = await page.inner_text("[data-testid=proration-amount]")
    assert amount.startswith("No prorated amount: ") and "limited mode" in amount
    await page.click("[data-testid=confirm]")
    await page.wait_for_url(f"{base}/console/tenants/{tenant}?*")
    await until_text(page, "[data-testid=plan]", "professional")
    timeline = await until_text(page, "[data-testid=timeline]", "upgrade")
    assert "by api" in timeline and "onboard" in timeline
    upgrade_row = page.locator("[data-testid=timeline] li", has_text="upgrade").first
    await upgrade_row.locator("summary").click()
    assert '"to_plan": "professional"' in await upgrade_row.locator("pre").inner_text()
    events = (await api.get(f"/tenants/{tenant}/events")).json()
    assert any(e["operation"] == "upgrade" and e["actor"] == "api" for e in events)
    ui = stack.lc.settings.temporal_ui_port
    workflow_link = page.locator(f"td a:text-is('tenant-{tenant}-upgrade')")
    assert await workflow_link.get_attribute("href") == (
        f"http://127.0.0.1:{ui}/namespaces/default/workflows/tenant-{tenant}-upgrade"
    )

    # usage over the limit shows red, and the downgrade's confirmation names the violation
    usage = {"users": 60, "projects": 20, "storage_gb": 40}
    assert (await api.put(f"/tenants/{tenant}/usage", json=usage)).status_code == 200
    await page.reload()
    assert "over" in (await page.get_attribute("[data-testid=bar-users]", "class") or "")
    assert "over" not in (await page.get_attribute("[data-testid=bar-projects]", "class") or "")
    await page.click("[data-testid=actions] >> text=Downgrade to starter")
    assert "users: 60 used, limit" in await page.inner_text("main")
    assert await page.locator("[data-testid=confirm]").is_disabled()
    await page.click("text=Cancel")

    # within the limits, a downgrade at period end waits with its date, then is cancelled
    assert (
        await api.put(f"/tenants/{tenant}/usage", json={"users": 8, "projects": 4, "storage_gb": 5})
    ).status_code == 200
    await page.reload()
    await page.click("[data-testid=actions] >> text=Downgrade to starter")
    assert "Current usage fits" in await page.inner_text("[data-testid=violations]")
    await page.click("[data-testid=confirm]")
    await page.wait_for_url(f"{base}/console/tenants/{tenant}?*")
    pending = await until_text(page, "[data-testid=pending]", "starter")
    effective = (await api.get(f"/tenants/{tenant}")).json()["pending_plan_change"]
    assert effective["effective_at"][:10] in pending
    await confirm(page, base, tenant, "Cancel the pending downgrade")
    for _ in range(40):
        if (await api.get(f"/tenants/{tenant}")).json()["pending_plan_change"] is None:
            break
        await page.wait_for_timeout(250)
    await page.reload()
    assert await page.locator("[data-testid=pending]").count() == 0
    assert await page.inner_text("[data-testid=plan]") == "professional"

    # export through to the download, checked against the API and the archive's manifest
    await confirm(page, base, tenant, "Export")
    link = page.locator("[data-testid=download]")
    await until_text(page, "main", "sha256")
    assert await link.count() == 1
    await page.screenshot(path=artifact("console-export.png"), full_page=True)
    await assert_accessible(page)
    async with page.expect_download() as downloading:
        await link.click()
    download = await downloading.value
    saved = ARTIFACTS / f"{tenant}-export.zip"
    await download.save_as(saved)
    data = saved.read_bytes()
    saved.unlink()
    (export,) = (await api.get(f"/tenants/{tenant}/exports")).json()
    assert hashlib.sha256(data).hexdigest() == export["sha256"]
    assert export["sha256"] == await link.get_attribute("data-sha256")
    manifest, _archive = read_archive(data)  # every entry's SHA-256 against the manifest
    assert manifest["tenant_id"] == tenant and len(manifest["files"]) >= 2

    # the overview: a purge due in 3 days and a failed operation with its cause
    r = await api.post(f"/tenants/{due}/delete", json={"requested_by": "dpo@x.io"})
    assert r.status_code == 202, r.text
    await wait_state(stack.lc, due, TenantState.DELETED)
    soon = datetime.now(UTC) + timedelta(days=3, hours=-1)  # 3 days left, rounded up
    async with stack.lc.repository.sessions.begin() as session:  # as if deleted 27 days ago
        await session.execute(
            update(Tenant).where(Tenant.id == due).values(purge_scheduled_at=soon)
        )
    await stack.lc.repository.record_operation(
        OperationUpdate(
            workflow_id=f"tenant-{failing}-upgrade",
            tenant_id=failing,
            kind="upgrade",
            status="failed",
            step="billing",
            error="card_declined: the card was declined",
        ),
        run_id="r1",
    )
    await page.click("nav.sections >> text=Overview")
    await page.wait_for_url(f"{base}/console/overview")
    counts = await api.get("/status")
    active = counts.json()["tenants_by_state"]["ACTIVE"]
    assert await page.inner_text("[data-testid=state-ACTIVE] .n") == str(active)
    assert await page.inner_text("[data-testid=state-DELETED] .n") == "1"
    assert await page.locator("[data-testid=chart] rect.out-completed").count() >= 1
    assert await page.locator("[data-testid=chart] rect.out-failed").count() == 1
    await page.click("text=The figures as a table")
    today = await page.inner_text("[data-testid=chart-table] tbody tr")
    assert today.split()[0] == datetime.now(UTC).date().isoformat()
    due_row = await page.inner_text("[data-testid=purges-due] tbody")
    assert due in due_row and "\t3\t" in due_row
    failed = await page.inner_text("[data-testid=failed] tbody")
    assert failing in failed and "card_declined" in failed
    await page.screenshot(path=artifact("console-overview.png"), full_page=True)
    await assert_accessible(page)
    phone = await new_page(browser, refused, width=390)
    await phone.context.add_cookies(await page.context.cookies())
    await phone.goto(f"{base}/console/overview")
    await phone.screenshot(path=artifact("console-overview-phone.png"), full_page=True)
    assert refused == []


async def test_soft_delete_reactivate_legal_hold_and_purge_with_its_certificate(
    stack: Stack, browser: Any
) -> None:
    api, base = stack.http, str(stack.http.base_url).rstrip("/")
    kept, erased = uid("kept"), uid("erased")
    await onboard(api, kept, "Kept Co")
    await onboard(api, erased, "Erased Co", data_key="2")  # org 2's rows and files
    refused: list[str] = []
    page = await new_page(browser, refused)
    await sign_in(page, base, ADMIN)
    await page.wait_for_url(f"{base}/console/tenants")

    # soft delete with 45 days of retention, then reactivate
    assert (await api.put(f"/tenants/{kept}/usage", json={"users": 1})).status_code == 200
    await page.goto(f"{base}/console/tenants/{kept}")
    await page.click("[data-testid=actions] >> text=Soft delete")
    assert "30 to 90 days" in await page.inner_text("[data-testid=explains]")
    await assert_accessible(page)
    await page.fill("#retention_days", "45")
    await page.fill("#reason", "customer left")
    await page.click("[data-testid=confirm]")
    await page.wait_for_url(f"{base}/console/tenants/{kept}?*")
    retention = await until_text(page, "[data-testid=retention]", "days left")
    assert "45 days left" in retention or "44 days left" in retention
    await until_text(page, "[data-testid=state]", "deleted")
    assert "revoked while deleted" in await page.inner_text("[data-testid=revoked]")
    assert await page.locator(".bar.over").count() == 0  # usage is not over a revoked limit
    assert "phase retained" in await page.inner_text("[data-testid=live]")
    await page.screenshot(path=artifact("console-deleted.png"), full_page=True)
    await confirm(page, base, kept, "Reactivate")
    await until_text(page, "[data-testid=state]", "active")
    timeline = await page.inner_text("[data-testid=timeline]")
    assert "delete" in timeline and "reactivat" in timeline
    assert (await api.get(f"/tenants/{kept}")).json()["state"] == "ACTIVE"

    # a legal hold hides purge-now; released, the purge needs the tenant id typed
    await page.goto(f"{base}/console/tenants/{erased}")
    await page.click("[data-testid=actions] >> text=Soft delete")
    await page.click("[data-testid=confirm]")
    await until_text(page, "[data-testid=state]", "deleted")
    await confirm(page, base, erased, "Place legal hold")
    await until_text(page, "[data-testid=legal-hold]", "legal hold")
    assert await page.locator("[data-testid=actions] >> text=Purge now").count() == 0
    await confirm(page, base, erased, "Release legal hold")
    await page.reload()
    assert await page.locator("[data-testid=legal-hold]").count() == 0
    await page.click("[data-testid=actions] >> text=Purge now")
    await page.fill("#reason", "written request of 2026-12-01")
    button = page.locator("[data-testid=confirm]")
    await page.fill("#confirm", erased[:-1])
    assert await button.is_disabled()
    await page.fill("#confirm", erased)
    assert await button.is_enabled()
    await button.click()
    await page.wait_for_url(f"{base}/console/tenants/{erased}?*")
    shown = await until_text(page, "[data-testid=certificate]", "verified")
    assert "Ed25519" in shown
    async with page.expect_download() as downloading:
        await page.click("[data-testid=certificate-download]")
    certificate = json.loads(Path(await (await downloading.value).path()).read_bytes())
    keys = (await api.get("/certificates/keys")).json()["keys"]
    public = {key_id(k): k for k in (load_public_key(x["public_key"]) for x in keys)}
    assert verify(certificate, public).valid
    assert certificate == (await api.get(f"/tenants/{erased}/deletion-certificate")).json()
    await page.screenshot(path=artifact("console-purged.png"), full_page=True)
    await assert_accessible(page)
    assert refused == []


def artifact(name: str) -> str:
    """Path of screenshot ``name`` under ARTIFACTS (created)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / name)
