"""``/docs`` renders offline in a real headless browser (Debian's chromium driven by
Playwright): every request to another host is refused, Swagger UI shows the API and its
Authorize button, and a screenshot is saved to the test artifacts (TEST_ARTIFACTS, default
``test-artifacts/``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.support.fixtures import make_settings, running_stack, serve_api

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)"
)


async def test_docs_render_offline_with_authorize(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    from playwright.async_api import Route, async_playwright

    refused: list[str] = []

    async def local_only(route: Route) -> None:
        if route.request.url.startswith("http://127.0.0.1:"):
            await route.continue_()
        else:
            refused.append(route.request.url)
            await route.abort()

    async with running_stack(dev_env, make_settings(tmp_path)) as lc, serve_api(lc) as http:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 1280, "height": 1600})
            await page.route("**/*", local_only)
            await page.goto(f"{str(http.base_url).rstrip('/')}/docs")
            await page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
            title = await page.inner_text(".swagger-ui .info .title")
            authorize = page.locator("button.authorize")
            await authorize.wait_for(timeout=10_000)
            operations = await page.locator(".opblock").count()
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "docs.png"), full_page=False)
            await authorize.click()
            await page.wait_for_selector("text=HTTPBearer", timeout=10_000)
            await page.screenshot(path=str(ARTIFACTS / "docs-authorize.png"))
            await browser.close()
    assert "Tenant Lifecycle" in title
    assert operations >= 20
    assert refused == []
    assert (ARTIFACTS / "docs.png").stat().st_size > 10_000
