"""Where export archives live, and the links that download them.

Layout under the export storage root (EXPORT_STORAGE_PATH or ``s3://S3_BUCKET/``)::

    staging/<tenant_id>/<export_id>/<stream>/<seq>.part   one chunk's ZIP member data
    staging/<tenant_id>/<export_id>/<stream>/<seq>.json   its sidecar, written after the part
    archives/<tenant_id>/<export_id>.zip                  the archive
    archives/<tenant_id>/<export_id>.json                 its size and SHA-256, written after

A sidecar is the durable "done" mark of a chunk or archive: a retried activity that finds it
returns it instead of redoing the work. Local archives are served by the API through links
signed with HMAC-SHA256 (SIGNING_SECRET); S3 archives through SigV4 presigned URLs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from botocore.exceptions import ClientError

from lifecycle.config import Settings
from lifecycle.domain.errors import LifecycleError
from lifecycle.storage.objectstore import LocalStore, ObjectStore, S3Options, S3Store, clear, usage

#: SigV4 presigned URLs are valid at most 7 days (S3's limit).
MAX_LINK_SECONDS = 7 * 24 * 3600


class LinkInvalid(LifecycleError):
    """A download link whose signature does not match (tampered or from another secret)."""

    status = 403
    title = "Forbidden"


class LinkExpired(LifecycleError):
    """A download link past its expiry, or an archive removed after its retention."""

    status = 410
    title = "Gone"


def s3_options(settings: Settings) -> S3Options:
    """S3 connection settings from S3_ENDPOINT_URL, S3_REGION and the S3 credentials."""
    secret = settings.s3_secret_access_key
    return S3Options(
        settings.s3_endpoint_url,
        settings.s3_region,
        settings.s3_access_key_id,
        secret.get_secret_value() if secret else None,
    )


class ExportStorage:
    """Archives and staging of exports in local files or an S3 bucket.

    ``signing_secret`` signs local download links (not needed by workers).
    """

    def __init__(
        self,
        kind: str,
        root: Path,
        bucket: str,
        s3: S3Options,
        signing_secret: str | None = None,
        public_endpoint_url: str | None = None,
    ) -> None:
        self.kind, self.root, self.bucket, self.s3 = kind, root, bucket, s3
        #: presigned links are signed for the host the downloader reaches (SigV4 signs it)
        self.public_s3 = replace(s3, endpoint_url=public_endpoint_url or s3.endpoint_url)
        self.signing_secret = signing_secret

    @classmethod
    def from_settings(cls, settings: Settings, *, signing: bool = False) -> ExportStorage:
        """Storage per EXPORT_STORAGE_TYPE; ``signing`` loads SIGNING_SECRET (API side)."""
        return cls(
            settings.export_storage_type,
            settings.exports_dir.resolve(),
            settings.s3_bucket,
            s3_options(settings),
            settings.secret("signing_secret") if signing else None,
            settings.s3_public_endpoint_url,
        )

    async def ensure_bucket(self) -> bool:
        """Create S3_BUCKET when it does not exist (idempotent, safe from many workers at
        once); True when this call created it. A no-op for local storage.

        Raises botocore's ClientError when the bucket cannot be read nor created (e.g. no
        permission, or it belongs to another account).
        """
        if self.kind != "s3":
            return False
        async with self.s3.client() as s3:  # type: ignore[attr-defined]
            try:
                await s3.head_bucket(Bucket=self.bucket)
                return False
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
                    raise
            try:
                await s3.create_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                    raise
                return False
            return True

    def _store(self, prefix: str) -> ObjectStore:
        if self.kind == "s3":
            return S3Store(self.bucket, prefix, self.s3)
        return LocalStore(self.root / prefix)

    def staging(self, tenant_id: str, export_id: str) -> ObjectStore:
        """Chunk parts and sidecars of one export."""
        return self._store(f"staging/{tenant_id}/{export_id}/")

    def archives(self, tenant_id: str) -> ObjectStore:
        """A tenant's archives (``<export_id>.zip``) and their sidecars."""
        return self._store(f"archives/{tenant_id}/")

    @staticmethod
    def archive_name(export_id: str) -> str:
        return f"{export_id}.zip"

    def archive_key(self, tenant_id: str, export_id: str) -> str:
        """Key of the archive under the storage root (what the export record stores)."""
        return f"archives/{tenant_id}/{self.archive_name(export_id)}"

    def local_path(self, tenant_id: str, export_id: str) -> Path:
        """File of a local archive (EXPORT_STORAGE_TYPE=local)."""
        return self.root / self.archive_key(tenant_id, export_id)

    # -- deletion (retention and purge) ----------------------------------------------------

    async def delete_staging(self, tenant_id: str, export_id: str) -> int:
        """Delete one export's chunk parts and sidecars; return the objects deleted."""
        return await clear(self.staging(tenant_id, export_id))

    async def delete_export(self, tenant_id: str, export_id: str) -> int:
        """Delete one export's archive, sidecar and staging; return the objects deleted."""
        names = [self.archive_name(export_id), f"{export_id}.json"]
        removed = sum([1 async for key, _ in self.archives(tenant_id).list() if key in names])
        await self.archives(tenant_id).delete(names)
        return removed + await self.delete_staging(tenant_id, export_id)

    def tenant_stores(self, tenant_id: str) -> list[ObjectStore]:
        """Every prefix holding a tenant's export data: its archives and its staging."""
        return [self.archives(tenant_id), self._store(f"staging/{tenant_id}/")]

    async def tenant_usage(self, tenant_id: str) -> dict[str, int]:
        """``{"files": n, "bytes": b}`` of a tenant's archives and staging together."""
        files = size = 0
        for store in self.tenant_stores(tenant_id):
            n, b = await usage(store)
            files, size = files + n, size + b
        return {"files": files, "bytes": size}

    async def delete_tenant_exports(
        self, tenant_id: str, progress: Callable[[int], object] | None = None
    ) -> int:
        """Delete every archive and all staging of a tenant (the purge calls this: GDPR Art.
        17 covers the exports too); return the number of objects deleted. Safe to repeat."""
        removed = 0
        for store in self.tenant_stores(tenant_id):
            removed += await clear(store, progress)
        return removed

    # -- links -----------------------------------------------------------------------------

    def signature(self, export_id: str, expires: int) -> str:
        """HMAC-SHA256 (hex) of ``<export_id>:<expires>`` with SIGNING_SECRET."""
        if not self.signing_secret:
            raise RuntimeError("ExportStorage was built without the signing secret")
        message = f"{export_id}:{expires}".encode()
        return hmac.new(self.signing_secret.encode(), message, hashlib.sha256).hexdigest()

    def check_signature(self, export_id: str, expires: int, signature: str, now: float) -> None:
        """Raise LinkInvalid (403) for a wrong signature, LinkExpired (410) after ``expires``
        (Unix seconds); the signature is checked first so that a forged expiry is a 403."""
        expected = self.signature(export_id, expires).encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass")):
            raise LinkInvalid(f"the download link of export '{export_id}' is not valid")
        if now >= expires:
            raise LinkExpired(f"the download link of export '{export_id}' has expired")

    async def download_url(self, tenant_id: str, export_id: str, expires: int, now: int) -> str:
        """A link valid until ``expires`` (Unix seconds): ``/exports/<id>/download?...`` (local,
        relative to the API) or a SigV4 presigned S3 URL (at most 7 days)."""
        if self.kind == "s3":
            seconds = max(1, min(expires - now, MAX_LINK_SECONDS))
            store = S3Store(self.bucket, f"archives/{tenant_id}/", self.public_s3)
            return await store.presign(self.archive_name(export_id), seconds)
        signature = self.signature(export_id, expires)
        return f"/exports/{export_id}/download?expires={expires}&signature={signature}"
