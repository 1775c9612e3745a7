"""Deletion certificates: proof that a tenant's data was purged (GDPR Art. 17 and the
accountability of Art. 5(2)).

The document is canonical JSON (keys sorted, no whitespace, UTF-8); its SHA-256 is the hex
digest of those bytes and its signature the hex Ed25519 signature (RFC 8032) of the same
bytes under the control plane's certificate key (CERTIFICATE_SIGNING_KEY), whose key id
``kid`` is in the document. Anyone with the public key (``GET /certificates/keys``) can
verify a certificate offline (``tenantctl certificate verify FILE``); nobody without the
private key can forge one. Certificates issued before (HMAC-SHA256 under SIGNING_SECRET)
still verify with that secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lifecycle.domain.deletion import CertificateView, CompletePurgeInput

FORMAT = "tenant-lifecycle/deletion-certificate/v1"
ED25519, HMAC_SHA256 = "Ed25519", "HMAC-SHA256"


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes that are hashed and signed: JSON with sorted keys and no whitespace."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_document(
    data: CompletePurgeInput,
    coverage: list[dict[str, str]] | None = None,
    retention_waived: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The certificate document: tenant, who asked and when, when the purge ended,
    ``retention_waived`` ({by, at, reason} when the purge ran early on a written request
    through purge now, else None), per
    store the counts before and after (``rows`` for tables, ``files``/``bytes`` for storage),
    and ``coverage``: every store and table checked with its kind (mapped, storage, exports,
    unmapped, and ignored with the reason), so a reader sees what the purge covered."""
    stores = {
        name: {"before": data.before[name], "after": data.after.get(name, {})}
        for name in sorted(data.before)
    }
    document: dict[str, Any] = {
        "format": FORMAT,
        "tenant_id": data.tenant_id,
        "requested_by": data.requested_by,
        "requested_at": data.requested_at.isoformat(),
        "retention_days": data.retention_days,
        "retention_waived": retention_waived,
        "purged_at": data.purged_at.isoformat(),
        "workflow_id": data.workflow_id,
        "stores": stores,
        "billing": data.billing,
        "cache": (
            "counted per store: cache[i] (Redis keys of the data map's [[cache]] entries)"
            if any(name.startswith("cache[") for name in stores)
            else "none: the data map lists no cache store"
        ),
    }
    if coverage is not None:
        document["coverage"] = coverage
    return document


def key_id(public_key: Ed25519PublicKey) -> str:
    """The key id (``kid``) of an Ed25519 public key: the first 16 hex digits of the SHA-256
    of its 32 raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> str:
    """The public key as PEM (SubjectPublicKeyInfo)."""
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """An Ed25519 public key from PEM; raises ValueError when it is not one."""
    key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key


def seal(tenant_id: str, document: dict[str, Any], key: Ed25519PrivateKey) -> CertificateView:
    """Sign ``document`` with Ed25519 under ``key``: the document gets ``signature_algorithm``
    and ``kid`` before it is canonicalised, so the key id is itself signed. The signature is
    the hex of the 64-byte Ed25519 signature of the canonical bytes (RFC 8032)."""
    document = {**document, "signature_algorithm": ED25519, "kid": key_id(key.public_key())}
    body = canonical(document)
    return CertificateView(
        tenant_id=tenant_id,
        document=document,
        sha256=hashlib.sha256(body).hexdigest(),
        signature=key.sign(body).hex(),
        algorithm=ED25519,
    )


def seal_hmac(tenant_id: str, document: dict[str, Any], secret: str) -> CertificateView:
    """The scheme before Ed25519 (HMAC-SHA256 under SIGNING_SECRET), kept to build old
    certificates in tests of :func:`verify`; never used to issue one."""
    body = canonical(document)
    return CertificateView(
        tenant_id=tenant_id,
        document=document,
        sha256=hashlib.sha256(body).hexdigest(),
        signature=hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    )


@dataclass
class Verification:
    """What :func:`verify` found: the scheme (``Ed25519`` or ``HMAC-SHA256``), the key id
    (Ed25519 only) and the problems (empty: intact and signed by that key)."""

    algorithm: str
    kid: str | None
    problems: list[str]

    @property
    def valid(self) -> bool:
        return not self.problems


def verify(
    certificate: Any,
    public_keys: dict[str, Ed25519PublicKey] | None = None,
    secret: str | None = None,
) -> Verification:
    """Check a certificate (as served by ``GET /tenants/{id}/deletion-certificate``) offline.

    Ed25519 certificates verify with the public key named by the document's ``kid`` in
    ``public_keys`` (``GET /certificates/keys``), no secret needed. Certificates of the old
    HMAC-SHA256 scheme verify only with the old SIGNING_SECRET (``secret``) and are reported
    as such. Never raises: any input yields a :class:`Verification` whose problems say why.
    """
    if not isinstance(certificate, dict) or not isinstance(certificate.get("document"), dict):
        return Verification("unknown", None, ["not a deletion certificate: no document"])
    document = certificate["document"]
    sha, signature = certificate.get("sha256"), certificate.get("signature")
    if not isinstance(sha, str) or not isinstance(signature, str):
        return Verification("unknown", None, ["not a deletion certificate: no sha256/signature"])
    try:
        body = canonical(document)
    except (TypeError, ValueError) as exc:
        return Verification("unknown", None, [f"document is not canonical JSON: {exc}"])
    problems = []
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest().encode(), _utf8(sha)):
        problems.append("sha256 does not match the document (the document was altered)")
    if document.get("signature_algorithm") == ED25519:
        kid = str(document.get("kid"))
        key = (public_keys or {}).get(kid)
        if key is None:
            problems.append(f"no public key with kid {kid} was given")
            return Verification(ED25519, kid, problems)
        try:
            key.verify(bytes.fromhex(signature), body)
        except (InvalidSignature, ValueError):
            problems.append(f"the Ed25519 signature does not verify under key {kid}")
        return Verification(ED25519, kid, problems)
    if secret is None:
        problems.append(
            "an HMAC-SHA256 certificate (issued before Ed25519): it verifies only with the "
            "old SIGNING_SECRET"
        )
        return Verification(HMAC_SHA256, None, problems)
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), _utf8(signature)):
        problems.append("signature does not verify under this SIGNING_SECRET")
    return Verification(HMAC_SHA256, None, problems)


def _utf8(text: str) -> bytes:
    """``text`` as bytes for a constant-time comparison: ``compare_digest`` refuses non-ASCII
    text, and a tampered file may hold it (lone surrogates kept, not refused)."""
    return text.encode("utf-8", "surrogatepass")
