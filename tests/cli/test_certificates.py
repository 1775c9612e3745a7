"""``tenantctl certificate verify`` offline: Ed25519 with only the public key, old HMAC
certificates reported as such, and any input answered without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from lifecycle.cli.app import app as cli
from lifecycle.domain.certificate import public_pem, seal, seal_hmac

runner = CliRunner()
DOC = {"tenant_id": "acme", "purged_at": "2026-12-01T00:00:00+00:00", "stores": {}}


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No secret in the environment, an empty data dir."""
    monkeypatch.delenv("SIGNING_SECRET", raising=False)
    monkeypatch.delenv("CERTIFICATE_SIGNING_KEY", raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def _write(path: Path, certificate: object) -> Path:
    path.write_text(json.dumps(certificate, ensure_ascii=False), encoding="utf-8")
    return path


def test_ed25519_certificate_with_non_ascii_fields_verifies_with_the_public_key(
    offline: Path,
) -> None:
    key = Ed25519PrivateKey.generate()
    cert = seal("acme", {**DOC, "requested_by": "Zoë Ünal \u202e 東京"}, key)
    pem = offline / "pub.pem"
    pem.write_text(public_pem(key.public_key()))
    file = _write(offline / "c.json", cert.model_dump(mode="json"))
    ok = runner.invoke(cli, ["certificate", "verify", str(file), "--public-key", str(pem)])
    assert ok.exit_code == 0, ok.output
    assert f"signed by Ed25519 key {cert.document['kid']}" in ok.output
    assert not (offline / "data").exists()  # nothing generated
    other = offline / "other.pem"
    other.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    wrong = runner.invoke(cli, ["certificate", "verify", str(file), "--public-key", str(other)])
    assert wrong.exit_code == 1 and "no public key with kid" in wrong.output
    none = runner.invoke(cli, ["certificate", "verify", str(file)])
    assert none.exit_code == 1 and "no public key with kid" in none.output
    assert not (offline / "data").exists()


def test_old_hmac_certificates_verify_with_the_old_secret_and_say_so(
    offline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert = seal_hmac("acme", {**DOC, "requested_by": "é"}, "old-secret")
    file = _write(offline / "c.json", cert.model_dump(mode="json"))
    without = runner.invoke(cli, ["certificate", "verify", str(file)])
    assert without.exit_code == 1
    assert "HMAC-SHA256 certificate (issued before Ed25519)" in " ".join(without.output.split())
    assert not (offline / "data").exists()  # no secret silently created
    monkeypatch.setenv("SIGNING_SECRET", "old-secret")
    ok = runner.invoke(cli, ["certificate", "verify", str(file)])
    assert ok.exit_code == 0, ok.output
    assert "old HMAC-SHA256 scheme" in ok.output
    monkeypatch.setenv("SIGNING_SECRET", "another")
    bad = runner.invoke(cli, ["certificate", "verify", str(file)])
    assert bad.exit_code == 1 and "does not verify under this SIGNING_SECRET" in bad.output


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\xff\xfe\x00garbage",
        b"[1, 2]",
        b'"just a string"',
        b"null",
        b'{"document": 3}',
        b'{"document": {"a": 1}, "sha256": 5, "signature": null}',
        b'{"document": {"signature_algorithm": "Ed25519", "kid": "x"}, "sha256": "00", '
        b'"signature": "zz"}',
        b'{"document": {"x": "\\ud800"}, "sha256": "00", "signature": "00"}',
        b'{"document": {"tenant_id": "[bold]\\u0007"}, "sha256": "", "signature": ""}',
        b"[" * 100_000,
    ],
)
def test_any_input_is_answered_without_a_traceback(offline: Path, content: bytes) -> None:
    file = offline / "c.json"
    file.write_bytes(content)
    pem = offline / "pub.pem"
    pem.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    for extra in ([], ["--public-key", str(pem)], ["--public-key", str(file)]):
        result = runner.invoke(cli, ["certificate", "verify", str(file), *extra])
        assert result.exit_code in (1, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        assert "Traceback" not in result.output
