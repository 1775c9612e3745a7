"""Verifying a deletion certificate never raises, whatever a tampered file holds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lifecycle.domain.certificate import seal, verify

SECRET = "test-signing-secret"
DOCUMENT = {"format": "x", "tenant_id": "acme-co", "purged_at": "2026-01-01T00:00:00+00:00"}


def test_a_sealed_certificate_verifies() -> None:
    cert = seal("acme-co", DOCUMENT, SECRET).model_dump(mode="json")
    assert verify(cert, SECRET) == []
    assert verify(cert, "another-secret") == ["signature does not verify under this SIGNING_SECRET"]


@pytest.mark.parametrize("field", ["sha256", "signature"])
@pytest.mark.parametrize("value", ["é" * 64, "\u2603", "\ud800", ""])
def test_non_ascii_hash_or_signature_is_reported_not_raised(field: str, value: str) -> None:
    cert = seal("acme-co", DOCUMENT, SECRET).model_dump(mode="json")
    cert[field] = value
    problems = verify(cert, SECRET)
    assert len(problems) == 1 and ("sha256" if field == "sha256" else "signature") in problems[0]


def test_document_that_is_not_canonical_json_is_reported() -> None:
    cert = seal("acme-co", DOCUMENT, SECRET).model_dump(mode="json")
    cert["document"] = {"tenant_id": "\ud800"}
    assert "not canonical JSON" in verify(cert, SECRET)[0]


def test_cli_verify_reports_non_ascii_signature(tmp_path: Path) -> None:
    cert = seal("acme-co", DOCUMENT, SECRET).model_dump(mode="json")
    cert["signature"] = "ü" * 64
    path = tmp_path / "cert.json"
    path.write_text(json.dumps(cert, ensure_ascii=False), encoding="utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "tenantctl"), "certificate", "verify", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"SIGNING_SECRET": SECRET, "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INVALID" in result.stdout and "Traceback" not in result.stderr
