"""The application's object storage: local files (``file:///abs/dir/``) or S3 (``s3://bucket/
prefix/`` through aioboto3; endpoint and credentials from the standard AWS variables, e.g.
``AWS_ENDPOINT_URL`` for MinIO). Object keys are relative to the root URL; a company's objects
live under ``{root}{company_id}/``, the prefix its data map entry names."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import aioboto3

S3_CONCURRENCY = 16


class ObjectStore(Protocol):
    async def put_many(self, objects: Sequence[tuple[str, bytes]]) -> None:
        """Write each ``(key, data)``; an existing object is replaced."""

    async def usage(self, prefix: str) -> tuple[int, int]:
        """``(objects, bytes)`` stored under key ``prefix``."""


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    async def put_many(self, objects: Sequence[tuple[str, bytes]]) -> None:
        await asyncio.to_thread(self._write, objects)

    def _write(self, objects: Sequence[tuple[str, bytes]]) -> None:
        for key, data in objects:
            path = self.root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    async def usage(self, prefix: str) -> tuple[int, int]:
        return await asyncio.to_thread(self._usage, prefix)

    def _usage(self, prefix: str) -> tuple[int, int]:
        base = self.root / prefix
        sizes = [p.stat().st_size for p in base.rglob("*") if p.is_file()] if base.is_dir() else []
        return len(sizes), sum(sizes)


class S3Store:
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        # an aioboto3 S3 client (its types are generated at runtime)
        self.client, self.bucket, self.prefix = client, bucket, prefix

    async def put_many(self, objects: Sequence[tuple[str, bytes]]) -> None:
        gate = asyncio.Semaphore(S3_CONCURRENCY)

        async def put(key: str, data: bytes) -> None:
            async with gate:
                await self.client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data)

        await asyncio.gather(*(put(key, data) for key, data in objects))

    async def usage(self, prefix: str) -> tuple[int, int]:
        count = size = 0
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        async for page in pages:
            for obj in page.get("Contents", []):
                count, size = count + 1, size + obj["Size"]
        return count, size


@contextlib.asynccontextmanager
async def open_store(url: str, *, create: bool = False) -> AsyncIterator[ObjectStore]:
    """The store rooted at ``url`` (``file:///abs/dir/`` or ``s3://bucket/prefix/``).

    ``create`` makes the directory or bucket when missing. Raises ``ValueError`` when the URL
    has another scheme or does not end with ``/`` (the data map appends ``{tenant_key}/``).
    """
    parts = urlsplit(url)
    if not url.endswith("/"):
        raise ValueError(f"storage URL {url!r} must end with '/'")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"storage URL {url!r}: use file:///absolute/path/")
        root = Path(unquote(parts.path))
        if create:
            root.mkdir(parents=True, exist_ok=True)
        yield LocalStore(root)
    elif parts.scheme == "s3":
        async with aioboto3.Session().client("s3") as client:
            if create:
                with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                    await client.create_bucket(Bucket=parts.netloc)
            yield S3Store(client, parts.netloc, parts.path.lstrip("/"))
    else:
        raise ValueError(f"storage URL {url!r}: scheme must be file:// or s3://")
