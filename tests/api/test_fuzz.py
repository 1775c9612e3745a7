"""A bounded schemathesis run over the OpenAPI document (issue 14, item 10): the API served over
real HTTP with a real worker, the Temporal dev server and PostgreSQL; every generated request,
valid or not, must answer without a server error and as documented (status code, content type,
body schema)."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from tests.api.test_billing_events import SECRET
from tests.support.fixtures import make_settings, running_stack, serve_api

#: The run's bounds: examples per operation and phase, and the whole run's seconds.
MAX_EXAMPLES, MAX_SECONDS = 4, 30
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


async def test_fuzz_finds_no_server_error_and_no_undocumented_answer(
    dev_env: WorkflowEnvironment, tmp_path: Path, pg_url: str
) -> None:
    settings = make_settings(tmp_path, database_url=pg_url, stripe_webhook_secret=SECRET)
    async with running_stack(dev_env, settings) as lc, serve_api(lc) as http:
        base = str(http.base_url).rstrip("/")
        report = tmp_path / "junit.xml"
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).parent / "st"),
            "run",
            f"{base}/openapi.json",
            "--url",
            base,
            "--header",
            f"Authorization: Bearer {settings.secret('api_token')}",
            "--checks",
            ",".join(CHECKS),
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            str(MAX_EXAMPLES),
            "--max-time",
            str(MAX_SECONDS),
            "--workers",
            "1",
            "--seed",
            "14",
            "--request-timeout",
            "20",
            "--report",
            "junit",
            "--report-junit-path",
            str(report),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=tmp_path,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        )
        out, _ = await asyncio.wait_for(proc.communicate(), timeout=MAX_SECONDS + 120)
    text = out.decode(errors="replace")
    default = Path(__file__).parents[2] / "test-artifacts"
    artifacts = Path(os.environ.get("TEST_ARTIFACTS", default))
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "schemathesis.txt").write_text(text, encoding="utf-8")
    assert proc.returncode == 0, text[-8000:]
    assert "No issues found" in text or "passed" in text, text[-3000:]
