"""``/certificates/keys``: the public keys of deletion certificates, served without a token
so that anyone holding a certificate can verify it (GDPR Art. 5(2), accountability)."""

from __future__ import annotations

from fastapi import APIRouter

from lifecycle.api.deps import Lifecycle
from lifecycle.domain.deletion import CertificateKeys

router = APIRouter(prefix="/certificates", tags=["deletion"])


@router.get("/keys")
async def certificate_keys(lifecycle: Lifecycle) -> CertificateKeys:
    """Key id, algorithm (Ed25519) and PEM public key of the current and retired keys."""
    return lifecycle.deletion.certificate_keys()
