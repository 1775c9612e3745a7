"""Deletion certificates: proof that a tenant's data was purged (GDPR Art. 17 and the
accountability of Art. 5(2)).

The document is canonical JSON (keys sorted, no whitespace, UTF-8); its SHA-256 is the hex
digest of those bytes and its signature the hex HMAC-SHA256 of the same bytes under
SIGNING_SECRET. Anyone holding the secret can verify a certificate offline
(``tenantctl certificate verify FILE``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from lifecycle.domain.deletion import CertificateView, CompletePurgeInput

FORMAT = "tenant-lifecycle/deletion-certificate/v1"


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes that are hashed and signed: JSON with sorted keys and no whitespace."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def build_document(data: CompletePurgeInput) -> dict[str, Any]:
    """The certificate document: tenant, who asked and when, when the purge ended, and per
    store the counts before and after (``rows`` for tables, ``files``/``bytes`` for storage)."""
    stores = {
        name: {"before": data.before[name], "after": data.after.get(name, {})}
        for name in sorted(data.before)
    }
    return {
        "format": FORMAT,
        "tenant_id": data.tenant_id,
        "requested_by": data.requested_by,
        "requested_at": data.requested_at.isoformat(),
        "retention_days": data.retention_days,
        "purged_at": data.purged_at.isoformat(),
        "workflow_id": data.workflow_id,
        "stores": stores,
        "billing": data.billing,
        "cache": "none: the control plane has no cache layer",
    }


def seal(tenant_id: str, document: dict[str, Any], secret: str) -> CertificateView:
    """Hash and sign ``document`` with ``secret`` (HMAC-SHA256)."""
    body = canonical(document)
    return CertificateView(
        tenant_id=tenant_id,
        document=document,
        sha256=hashlib.sha256(body).hexdigest(),
        signature=hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
    )


def verify(certificate: dict[str, Any], secret: str) -> list[str]:
    """Check a certificate (as served by ``GET /tenants/{id}/deletion-certificate``).

    Returns the problems found, empty when the SHA-256 matches the document and the signature
    verifies under ``secret`` (compared in constant time).
    """
    try:
        body = canonical(certificate["document"])
        sha, signature = str(certificate["sha256"]), str(certificate["signature"])
    except (KeyError, TypeError) as exc:
        return [f"not a deletion certificate: missing {exc}"]
    except ValueError as exc:  # e.g. a lone surrogate, which has no UTF-8 form
        return [f"not a deletion certificate: the document is not canonical JSON ({exc})"]
    problems = []
    # Bytes, not str: compare_digest refuses non-ASCII text, and a tampered file may hold it.
    if not hmac.compare_digest(hashlib.sha256(body).hexdigest().encode(), _utf8(sha)):
        problems.append("sha256 does not match the document (the document was altered)")
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), _utf8(signature)):
        problems.append("signature does not verify under this SIGNING_SECRET")
    return problems


def _utf8(text: str) -> bytes:
    """``text`` as bytes for a constant-time comparison (lone surrogates kept, not refused)."""
    return text.encode("utf-8", "surrogatepass")
