"""Object storage behind one small interface: local files (``file://``) and S3-compatible
servers (``s3://bucket/prefix``, through aioboto3). Used for the tenant's files in the SaaS
application (data map ``[[storage]]``) and for export archives.

Keys are ``/``-separated paths relative to the store's root; sizes are bytes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse

import aioboto3
from botocore.config import Config as BotoConfig

from lifecycle.errors import ConfigError

READ_CHUNK = 1024 * 1024  # bytes per read when streaming an object


@dataclass(frozen=True)
class S3Options:
    """Connection settings of an S3-compatible server (None = AWS defaults / environment)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def client(self) -> object:
        """An aioboto3 S3 client context manager, SigV4-signed (``signature_version='s3v4'``)."""
        session = aioboto3.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        )
        return session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
        )


class ObjectStore(Protocol):
    """A prefix of an object store."""

    url: str

    def list(self) -> AsyncIterator[tuple[str, int]]:
        """Yield ``(key, size_bytes)`` of every object under the prefix, sorted by key."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """Stream one object's bytes in chunks of at most 1 MiB."""
        ...

    async def delete(self, keys: list[str]) -> int:
        """Delete ``keys`` (missing ones are fine); return how many were deleted or requested
        (S3 does not tell a missing key from a deleted one)."""
        ...


class LocalStore:
    """Files under a directory (``file:///abs/path/`` or a plain path)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.url = self.root.as_uri() + "/"

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise ValueError(f"key {key!r} escapes the store root {self.root}")
        return path

    async def list(self) -> AsyncIterator[tuple[str, int]]:
        if not self.root.is_dir():
            return
        entries = await asyncio.to_thread(
            lambda: sorted(
                (p.relative_to(self.root).as_posix(), p.stat().st_size)
                for p in self.root.rglob("*")
                if p.is_file()
            )
        )
        for entry in entries:
            yield entry

    async def read(self, key: str) -> AsyncIterator[bytes]:
        with open(self._path(key), "rb") as fh:  # noqa: ASYNC230 - chunked, bounded reads
            while chunk := await asyncio.to_thread(fh.read, READ_CHUNK):
                yield chunk

    async def delete(self, keys: list[str]) -> int:
        existed = 0
        for key in keys:
            path = self._path(key)
            try:
                await asyncio.to_thread(path.unlink)
                existed += 1
            except FileNotFoundError:
                pass
        await asyncio.to_thread(self._prune_empty_dirs)
        return existed

    def _prune_empty_dirs(self) -> None:
        if not self.root.is_dir():
            return
        for dirpath, _dirs, _files in sorted(os.walk(self.root), reverse=True):
            if not os.listdir(dirpath):
                os.rmdir(dirpath)


class S3Store:
    """Objects under ``s3://bucket/prefix/``."""

    def __init__(self, bucket: str, prefix: str, options: S3Options) -> None:
        self.bucket, self.prefix, self.options = bucket, prefix, options
        self.url = f"s3://{bucket}/{prefix}"

    async def list(self) -> AsyncIterator[tuple[str, int]]:
        async with self.options.client() as s3:  # type: ignore[attr-defined]
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    yield obj["Key"][len(self.prefix) :], int(obj["Size"])

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with self.options.client() as s3:  # type: ignore[attr-defined]
            response = await s3.get_object(Bucket=self.bucket, Key=self.prefix + key)
            async with response["Body"] as body:
                while chunk := await body.read(READ_CHUNK):
                    yield chunk

    async def delete(self, keys: list[str]) -> int:
        async with self.options.client() as s3:  # type: ignore[attr-defined]
            for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
                batch = keys[start : start + 1000]
                response = await s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.prefix + k} for k in batch], "Quiet": True},
                )
                if response.get("Errors"):
                    first = response["Errors"][0]
                    raise OSError(f"S3 delete of {first['Key']} failed: {first['Message']}")
        return len(keys)


def open_store(url: str, s3: S3Options | None = None) -> ObjectStore:
    """The store for ``file:///dir/`` (or a plain path) or ``s3://bucket/prefix/``.

    Raises ConfigError for any other scheme.
    """
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        return LocalStore(Path(unquote(parsed.path if parsed.scheme else url)))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ConfigError(f"storage URL {url!r} has no bucket")
        return S3Store(parsed.netloc, parsed.path.lstrip("/"), s3 or S3Options())
    raise ConfigError(f"storage URL {url!r}: scheme must be file:// or s3://")
