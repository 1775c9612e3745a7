"""TEMPORAL_TLS_CERT/KEY/CA and TEMPORAL_API_KEY reach the connection that the worker and
the client share (``connect_temporal``): against the plaintext dev server, a TLS connection
fails and a plain one succeeds."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError
from temporalio.service import TLSConfig
from temporalio.testing import WorkflowEnvironment

from lifecycle.client.base import connect_temporal, temporal_tls
from lifecycle.domain.errors import ConfigError
from tests.support.fixtures import make_settings


def _pem_pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
        + ["-subj", "/CN=tenant-lifecycle-test", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    return cert, key


def test_tls_settings_become_the_connection_tls_config(tmp_path: Path) -> None:
    cert, key = _pem_pair(tmp_path)
    mtls = temporal_tls(
        make_settings(tmp_path, temporal_tls_cert=cert, temporal_tls_key=key, temporal_tls_ca=cert)
    )
    assert isinstance(mtls, TLSConfig)
    assert mtls.client_cert == cert.read_bytes() and mtls.client_private_key == key.read_bytes()
    assert mtls.server_root_ca_cert == cert.read_bytes()
    api_key_only = temporal_tls(make_settings(tmp_path, temporal_api_key="k"))
    assert api_key_only == TLSConfig()  # Temporal Cloud: TLS with the system roots
    assert temporal_tls(make_settings(tmp_path)) is False
    with pytest.raises(ConfigError, match="TEMPORAL_TLS_CA=.*missing.pem"):
        temporal_tls(make_settings(tmp_path, temporal_tls_ca=tmp_path / "missing.pem"))
    with pytest.raises(ValidationError, match="TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY"):
        make_settings(tmp_path, temporal_tls_cert=cert)


async def test_connect_temporal_uses_tls_and_the_api_key(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    address = dev_env.client.service_client.config.target_host
    cert, _ = _pem_pair(tmp_path)
    plain = await connect_temporal(make_settings(tmp_path, temporal_address=address))
    assert await plain.service_client.check_health()
    for secured in (
        make_settings(tmp_path, temporal_address=address, temporal_tls_ca=cert),
        make_settings(tmp_path, temporal_address=address, temporal_api_key="cloud-key"),
    ):
        with pytest.raises(RuntimeError):  # a TLS handshake with a plaintext server
            await connect_temporal(secured)
