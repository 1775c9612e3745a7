"""No secret in any output (issue 14, item 8): after a full lifecycle over HTTP (onboard with
billing and the provisioning webhook, upgrade, export and download, suspend, reactivate,
delete), neither the API's and the worker's log lines (access log at INFO, the HTTP client's
request log) nor ``/config`` contain any secret of the environment or a link signature."""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from temporalio.testing import WorkflowEnvironment

from lifecycle.config import Settings
from lifecycle.domain.operations import OperationKind, workflow_id
from lifecycle.logs import configure_logging
from tests.operations.test_export import wait_export
from tests.support.api import onboard, wait_operation
from tests.support.export_helpers import make_app
from tests.support.fixtures import make_settings, running_stack, serve_api, uid
from tests.support.plan_fixtures import stripe_server  # noqa: F401  (fixture)
from tests.support.stripe_server import StripeServer

SECRETS = {
    "api_token": "tok-api-3f9c2a",
    "signing_secret": "sig-secret-77d1e0",
    "stripe_webhook_secret": "whsec_hook_5a5a5a",
    "provisioning_webhook_secret": "prov-secret-c0ffee",
    "s3_secret_access_key": "s3-secret-key-b00b1e",
    "s3_access_key_id": "AKIAEXAMPLEKEY123",
}
URL_PASSWORD, URL_TOKEN = "webhook-pass-9e9e", "query-token-4d4d"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """The product's own logging set-up (as in ``tenantctl api`` and ``worker``), writing
    to a buffer; the root logger is restored afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffer = io.StringIO()
    yield buffer
    root.handlers[:], _ = saved
    root.setLevel(saved[1])


async def provisioning_receiver() -> tuple[web.AppRunner, str]:
    async def handle(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_post("/provision", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://hook-user:{URL_PASSWORD}@127.0.0.1:{port}/provision?token={URL_TOKEN}"


def lifecycle_settings(
    tmp_path: Path, stripe: StripeServer, hook_url: str, datamap: Path
) -> Settings:
    return make_settings(
        tmp_path,
        **SECRETS,
        stripe_api_key=stripe.api_key,
        stripe_api_base=stripe.url,
        provisioning_webhook_url=hook_url,
        s3_endpoint_url=f"https://s3user:{URL_PASSWORD}@s3.example.com/?X-Amz-Token={URL_TOKEN}",
        data_map_path=datamap,
        data_export_chunk_size_mb=0.002,
        log_level="DEBUG",
    )


async def test_no_secret_in_logs_or_config_after_a_lifecycle(
    dev_env: WorkflowEnvironment,
    tmp_path: Path,
    stripe_server: StripeServer,  # noqa: F811
    captured_logs: io.StringIO,
) -> None:
    runner, hook_url = await provisioning_receiver()
    app = await make_app(tmp_path)
    settings = lifecycle_settings(tmp_path, stripe_server, hook_url, app.datamap)
    configure_logging(settings)
    logging.getLogger().handlers[0].setStream(captured_logs)  # type: ignore[attr-defined]
    secrets = [*SECRETS.values(), stripe_server.api_key, URL_PASSWORD, URL_TOKEN]
    try:
        async with (
            running_stack(dev_env, settings) as lc,
            serve_api(lc, log_level="info") as http,
        ):
            tenant = uid("sec")
            await onboard(http, tenant, "starter")
            r = await http.post(f"/tenants/{tenant}/upgrade", json={"to_plan": "professional"})
            assert await wait_operation(http, r.json()["workflow_id"]) == "completed"
            # the provisioning webhook is an event subscriber: its deliveries log its URL
            await lc.outbound_events.dispatch_pending()
            for event in await lc.outbound_events.events(tenant):
                wid = workflow_id(tenant, OperationKind.EVENT, str(event.event_id))
                await lc.core.handle(wid).result()

            r = await http.post(f"/tenants/{tenant}/exports", json={"export_type": "tables"})
            assert r.status_code == 202, r.text
            view = await wait_export(http, r.json()["export_id"])
            assert view["status"] == "completed", view
            link = view["download_url"]
            signature = parse_qs(urlsplit(link).query)["signature"][0]
            secrets.append(signature)
            download = await http.get(link)
            assert download.status_code == 200

            r = await http.post(f"/tenants/{tenant}/suspend", json={"reason": "audit"})
            assert await wait_operation(http, r.json()["workflow_id"]) == "completed"
            r = await http.post(f"/tenants/{tenant}/reactivate", json={})
            assert await wait_operation(http, r.json()["workflow_id"]) == "completed"
            r = await http.post(f"/tenants/{tenant}/delete", json={"requested_by": "dpo"})
            assert r.status_code == 202, r.text
            await asyncio.sleep(1)  # the deletion's first steps log too
            config = (await http.get("/config")).text
    finally:
        await runner.cleanup()

    logs = captured_logs.getvalue()
    # The log really holds what would leak: the access log and the webhook client's lines.
    assert "/download?***" in logs and "/provision?***" in logs and "http://***@" in logs
    assert "s3.example.com" in config and "***@" in config
    for secret in secrets:
        assert secret not in logs, (secret, [line for line in logs.splitlines() if secret in line])
        assert secret not in config, secret


def test_dev_prints_the_api_token_only_when_just_generated(tmp_path: Path) -> None:
    from lifecycle.cli.dev import _api_token_line

    given = Settings(_env_file=None, data_dir=tmp_path, api_token="tok-from-env-1234")  # type: ignore[call-arg]
    assert "tok-from-env-1234" not in _api_token_line(given)
    fresh = Settings(_env_file=None, data_dir=tmp_path / "new")  # type: ignore[call-arg]
    first = _api_token_line(fresh)
    token = (tmp_path / "new" / "api_token").read_text().strip()
    assert token in first and "new" in first
    again = _api_token_line(Settings(_env_file=None, data_dir=tmp_path / "new"))  # type: ignore[call-arg]
    assert token not in again and "api_token" in again


def test_redacting_filter_covers_arguments_and_tracebacks() -> None:
    from lifecycle.logs import RedactingFilter

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/exports/ab/download?expires=1&signature=cafe", "1.1", 200),
        None,
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /exports/ab/download?*** HTTP/1.1" 200'
    try:
        raise RuntimeError(f"POST http://u:{URL_PASSWORD}@h/x?token={URL_TOKEN} failed")
    except RuntimeError:
        import sys

        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "boom", None, sys.exc_info())
    RedactingFilter().filter(record)
    assert record.exc_text and URL_PASSWORD not in record.exc_text
    assert URL_TOKEN not in record.exc_text and "http://***@h/x?***" in record.exc_text
