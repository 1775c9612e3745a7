"""The tenant console (issue 18) in a real headless browser: Debian's chromium driven by
Playwright, every request to another host refused, each wait bounded.

An admin signs in (a wrong token first), searches and filters the list, opens a tenant,
suspends it through the confirmation and sees the timeline show the suspension by its token's
name; a form without the CSRF token is refused. A viewer sees no action buttons and its forged
POST (with a valid CSRF token) is refused. Screenshots go to TEST_ARTIFACTS
(default ``test-artifacts/``).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from lifecycle.api.auth import token_hash
from tests.support.api import wait_operation
from tests.support.fixtures import make_settings, running_stack, serve_api, uid

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))
ADMIN, VIEWER = "test-token", "viewer-token-1"
WAIT_MS = 20_000

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture
async def api(dev_env: WorkflowEnvironment, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(
        f'[[tokens]]\nname = "support-viewer"\nrole = "viewer"\nsha256 = "{token_hash(VIEWER)}"\n'
    )
    settings = make_settings(tmp_path, api_token=ADMIN, api_tokens_file=tokens)
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        yield http


async def onboard(http: httpx.AsyncClient, tenant: str, name: str) -> None:
    r = await http.post("/tenants", json={"tenant_id": tenant, "name": name, "email": "o@x.io"})
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
    await page.goto(f"{base}/console")
    await page.fill("#token", token)
    await page.click("button[type=submit]")


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

    csrf = await page.get_attribute("input[name=csrf]", "value")
    r = await page.request.post(
        f"{base}/console/tenants/{tenant}/actions/suspend",
        form={"csrf": csrf, "reason": "forged"},
        max_redirects=0,
    )
    assert r.status == 403 and "needs role &#39;operator&#39;" in await r.text()
    r = await page.request.get(f"{base}/console/tenants/{tenant}/actions/suspend")
    assert r.status == 403
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


def artifact(name: str) -> str:
    """Path of screenshot ``name`` under ARTIFACTS (created)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / name)
