"""Verifying a deletion certificate never raises, whatever a tampered file holds: Ed25519
certificates (checked with the public key) and those of the old HMAC scheme alike."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from lifecycle.domain.certificate import key_id, public_pem, seal, seal_hmac, verify

SECRET = "test-signing-secret"
DOCUMENT = {"format": "x", "tenant_id": "acme-co", "purged_at": "2026-01-01T00:00:00+00:00"}
KEY = Ed25519PrivateKey.generate()
KEYS = {key_id(KEY.public_key()): KEY.public_key()}


def ed25519() -> dict[str, Any]:
    return seal("acme-co", DOCUMENT, KEY).model_dump(mode="json")


def hmac_sha256() -> dict[str, Any]:
    return seal_hmac("acme-co", DOCUMENT, SECRET).model_dump(mode="json")


def test_sealed_certificates_verify() -> None:
    assert verify(ed25519(), KEYS).problems == []
    assert verify(hmac_sha256(), secret=SECRET).problems == []
    assert verify(hmac_sha256(), secret="another-secret").problems == [
        "signature does not verify under this SIGNING_SECRET"
    ]


@pytest.mark.parametrize("make", [ed25519, hmac_sha256])
@pytest.mark.parametrize("field", ["sha256", "signature"])
@pytest.mark.parametrize("value", ["é" * 64, "\u2603", "\ud800", ""])
def test_non_ascii_hash_or_signature_is_reported_not_raised(
    make: Any, field: str, value: str
) -> None:
    cert = make()
    cert[field] = value
    problems = verify(cert, KEYS, SECRET).problems
    assert len(problems) == 1 and ("sha256" if field == "sha256" else "signature") in problems[0]


def test_document_that_is_not_canonical_json_is_reported() -> None:
    cert = ed25519()
    cert["document"] = {"tenant_id": "\ud800"}
    assert "not canonical JSON" in verify(cert, KEYS).problems[0]


def test_cli_verify_reports_non_ascii_signature(tmp_path: Path) -> None:
    cert = ed25519()
    cert["signature"] = "ü" * 64
    path = tmp_path / "cert.json"
    path.write_text(json.dumps(cert, ensure_ascii=False), encoding="utf-8")
    pem = tmp_path / "public.pem"
    pem.write_text(public_pem(KEY.public_key()), encoding="utf-8")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "tenantctl"),
            "certificate",
            "verify",
            str(path),
            "--public-key",
            str(pem),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "INVALID" in result.stdout and "Traceback" not in result.stderr
