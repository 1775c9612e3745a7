"""Object storage behind one small interface: local files (``file://``) and S3-compatible
servers (``s3://bucket/prefix``, through aioboto3). Used for the tenant's files in the SaaS
application (data map ``[[storage]]``) and for export archives.

Keys are ``/``-separated paths relative to the store's root; sizes are bytes.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import hashlib
import os
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

import aioboto3
from botocore.config import Config as BotoConfig
from zlib_ng import zlib_ng

from lifecycle.domain.errors import ConfigError

READ_CHUNK = 1024 * 1024  # bytes per read when streaming an object
#: Bytes per S3 multipart part: at least 5 MiB (S3's minimum for all but the last part);
#: 10,000 parts of 16 MiB allow objects up to 156 GiB.
PART_SIZE = 16 * 1024 * 1024


@dataclass(frozen=True)
class S3Options:
    """Connection settings of an S3-compatible server (None = AWS defaults / environment)."""

    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None

    def client(self) -> object:
        """An aioboto3 S3 client context manager, SigV4-signed (``signature_version='s3v4'``),
        from this process's one session for these options (:func:`_session`).

        A plain ``http://`` endpoint skips building the TLS context that certificate checks
        need (loading the CA bundle: ~40 ms of CPU per client here), which it never uses.
        """
        plain_http = (self.endpoint_url or "").startswith("http://")
        return _session(self).client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=BotoConfig(signature_version="s3v4", s3={"addressing_style": "path"}),
            **({"verify": False} if plain_http else {}),
        )


@functools.cache
def _session(options: S3Options) -> aioboto3.Session:
    """One aioboto3 session per process and S3Options, shared by every client made from it.

    A new session parses botocore's JSON service models again for its first client: about
    140 ms of CPU on the event loop's thread for every S3 call made that way, against 6 ms
    for a client of a session that has its models loaded (measured here, 2026-12-03). With
    dozens of export chunks at once that parsing starved the workers' workflow tasks past
    their 10 s timeout (the topology test, issue 15). Clients are made on the event loop's
    thread only (botocore sessions are not thread-safe).
    """
    return aioboto3.Session(
        aws_access_key_id=options.access_key_id,
        aws_secret_access_key=options.secret_access_key,
        region_name=options.region,
    )


class ObjectStore(Protocol):
    """A prefix of an object store."""

    url: str

    def list(self, start_after: str | None = None) -> AsyncGenerator[tuple[str, int], None]:
        """Yield ``(key, size_bytes)`` of every object under the prefix, sorted by key (code
        point order = S3's UTF-8 byte order), only keys after ``start_after`` when given."""
        ...

    def read(self, key: str) -> AsyncIterator[bytes]:
        """Stream one object's bytes in chunks of at most 1 MiB."""
        ...

    def writer(self, key: str, digest: bool = True, scratch: bool = False) -> ObjectWriter:
        """A streaming writer of object ``key``; the object appears only when the writer
        exits without error (atomic rename or completed multipart upload). ``digest``: keep
        the SHA-256 of what is written (``w.sha256``). ``scratch``: a short-lived object
        (export staging, deleted within minutes): a local one is not fsynced, so the kernel
        mostly never writes it to disk, and its CRC-32 is kept (``w.crc32``) for the reader
        to check, since an operating-system crash may lose or zero what was not written."""
        ...

    async def get_bytes(self, key: str) -> bytes | None:
        """A small object's whole content, or None when it does not exist."""
        ...

    async def delete(self, keys: builtins.list[str]) -> int:
        """Delete ``keys`` (missing ones are fine); return how many were deleted or requested
        (S3 does not tell a missing key from a deleted one)."""
        ...


class ObjectWriter:
    """File-like sink of one object: synchronous ``write`` (usable by ``zipfile`` from a
    worker thread: ``tell`` works, ``seek`` does not, so ZIP entries get data descriptors) and
    asynchronous ``drain`` to ship buffered bytes. Use as ``async with store.writer(key) as w``;
    afterwards ``w.size`` (bytes) and ``w.sha256`` (hex) describe what was written.

    Memory is bounded: at most one S3 part (PART_SIZE) plus the last write is buffered.
    ``crc32`` is the CRC-32 of what was written when the writer keeps it (scratch objects).
    """

    def __init__(self, digest: bool = True, crc: bool = False) -> None:
        self.size = 0
        self._hash = hashlib.sha256() if digest else None
        self.crc32: int | None = 0 if crc else None

    @property
    def sha256(self) -> str:
        if self._hash is None:
            raise RuntimeError("this writer was opened with digest=False")
        return self._hash.hexdigest()

    def write(self, data: bytes | memoryview) -> int:
        if self._hash is not None:
            self._hash.update(data)
        if self.crc32 is not None:
            self.crc32 = zlib_ng.crc32(data, self.crc32)
        self.size += len(data)
        self._put(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        pass

    def _put(self, data: bytes | memoryview) -> None:
        raise NotImplementedError

    async def drain(self) -> None:
        """Ship what is buffered (S3: full parts); call after writes from the event loop."""

    async def _commit(self) -> None:
        raise NotImplementedError

    async def _abort(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> ObjectWriter:
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is not None:
            await self._abort()
            return
        try:
            await self._commit()
        except BaseException:
            await self._abort()  # no half-written object or dangling multipart upload
            raise


#: Bytes a local object is written between two write-behind flushes: an ``fdatasync`` in a
#: background thread while the writer goes on, so the commit's ``fsync`` finds little left
#: to write (a 400 MB archive's single fsync took 0.7 s here).
WRITE_BEHIND = 32 * 1024 * 1024
_FLUSHES = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="write-behind")


class _LocalWriter(ObjectWriter):
    """Writes ``path`` through a temporary sibling renamed into place on success, durable
    (fsync, with write-behind flushes on the way) before the rename unless ``scratch``."""

    def __init__(self, path: Path, digest: bool, scratch: bool) -> None:
        super().__init__(digest, crc=scratch)
        self.path, self.durable = path, not scratch
        self.tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        self._unflushed = 0
        self._flushing: Future[None] | None = None

    async def __aenter__(self) -> ObjectWriter:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.tmp, "wb")
        return self

    def _put(self, data: bytes | memoryview) -> None:
        self.fh.write(data)
        self._unflushed += len(data)
        idle = self._flushing is None or self._flushing.done()
        if self.durable and self._unflushed >= WRITE_BEHIND and idle:
            self.fh.flush()
            self._flushing = _FLUSHES.submit(os.fdatasync, self.fh.fileno())
            self._unflushed = 0

    def _settle(self) -> None:
        """Wait for the write-behind flush in progress (raising its error, if any)."""
        if self._flushing is not None:
            self._flushing.result()

    async def _commit(self) -> None:
        def finish() -> None:
            self._settle()
            self.fh.flush()
            if self.durable:
                os.fsync(self.fh.fileno())
            self.fh.close()
            os.replace(self.tmp, self.path)

        await asyncio.to_thread(finish)

    async def _abort(self) -> None:
        def discard() -> None:
            with contextlib.suppress(OSError):
                self._settle()
            self.fh.close()
            self.tmp.unlink(missing_ok=True)

        await asyncio.to_thread(discard)


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

    async def list(self, start_after: str | None = None) -> AsyncGenerator[tuple[str, int], None]:
        if not self.root.is_dir():
            return
        entries = await asyncio.to_thread(
            lambda: sorted(
                (p.relative_to(self.root).as_posix(), p.stat().st_size)
                for p in self.root.rglob("*")
                if p.is_file() and not p.name.endswith(".tmp")
            )
        )
        for entry in entries:
            if start_after is None or entry[0] > start_after:
                yield entry

    async def read(self, key: str) -> AsyncIterator[bytes]:
        with open(self._path(key), "rb") as fh:
            while chunk := await asyncio.to_thread(fh.read, READ_CHUNK):
                yield chunk

    def writer(self, key: str, digest: bool = True, scratch: bool = False) -> ObjectWriter:
        return _LocalWriter(self._path(key), digest, scratch)

    async def get_bytes(self, key: str) -> bytes | None:
        try:
            return await asyncio.to_thread(self._path(key).read_bytes)
        except FileNotFoundError:
            return None

    async def delete(self, keys: builtins.list[str]) -> int:
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


class _S3Writer(ObjectWriter):
    """Buffers up to PART_SIZE and uploads it as one part of a multipart upload (started
    with the first full part); an object smaller than one part is a single PUT."""

    def __init__(
        self, store: S3Store, key: str, part_size: int, digest: bool, crc: bool = False
    ) -> None:
        super().__init__(digest, crc)
        self.store, self.key, self.part_size = store, store.prefix + key, part_size
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self._client_cm: Any = None
        self.s3: Any = None

    def _put(self, data: bytes | memoryview) -> None:
        self.buffer += data

    async def __aenter__(self) -> ObjectWriter:
        self._client_cm = self.store.options.client()
        self.s3 = await self._client_cm.__aenter__()
        return self

    async def __aexit__(self, exc_type: object, *exc: object) -> None:
        try:
            await super().__aexit__(exc_type, *exc)
        finally:
            await self._client_cm.__aexit__(None, None, None)

    async def _upload_part(self, data: bytes) -> None:
        if self.upload_id is None:
            created = await self.s3.create_multipart_upload(Bucket=self.store.bucket, Key=self.key)
            self.upload_id = created["UploadId"]
        number = len(self.parts) + 1
        response = await self.s3.upload_part(
            Bucket=self.store.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            PartNumber=number,
            Body=data,
        )
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})

    async def drain(self) -> None:
        while len(self.buffer) >= self.part_size:
            part = bytes(self.buffer[: self.part_size])
            del self.buffer[: self.part_size]
            await self._upload_part(part)

    async def _commit(self) -> None:
        await self.drain()
        if self.upload_id is None:
            await self.s3.put_object(
                Bucket=self.store.bucket, Key=self.key, Body=bytes(self.buffer)
            )
            return
        if self.buffer:
            await self._upload_part(bytes(self.buffer))
        self.buffer.clear()
        await self.s3.complete_multipart_upload(
            Bucket=self.store.bucket,
            Key=self.key,
            UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts},
        )

    async def _abort(self) -> None:
        self.buffer.clear()
        if self.upload_id is not None:
            await self.s3.abort_multipart_upload(
                Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id
            )


class S3Store:
    """Objects under ``s3://bucket/prefix/``."""

    def __init__(self, bucket: str, prefix: str, options: S3Options) -> None:
        self.bucket, self.prefix, self.options = bucket, prefix, options
        self.url = f"s3://{bucket}/{prefix}"

    async def list(self, start_after: str | None = None) -> AsyncGenerator[tuple[str, int], None]:
        extra = {"StartAfter": self.prefix + start_after} if start_after is not None else {}
        async with self.options.client() as s3:  # type: ignore[attr-defined]
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix, **extra):
                for obj in page.get("Contents", []):
                    yield obj["Key"][len(self.prefix) :], int(obj["Size"])

    def writer(self, key: str, digest: bool = True, scratch: bool = False) -> ObjectWriter:
        return _S3Writer(self, key, PART_SIZE, digest, crc=scratch)

    async def get_bytes(self, key: str) -> bytes | None:
        async with self.options.client() as s3:  # type: ignore[attr-defined]
            try:
                response = await s3.get_object(Bucket=self.bucket, Key=self.prefix + key)
            except s3.exceptions.NoSuchKey:
                return None
            body = response["Body"]
            async with body:
                return await body.read()

    async def presign(self, key: str, expires_in: int) -> str:
        """A SigV4 presigned GET URL of ``key`` valid ``expires_in`` seconds (S3 allows at
        most 604800 = 7 days for SigV4)."""
        async with self.options.client() as s3:  # type: ignore[attr-defined]
            return await s3.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.prefix + key},
                ExpiresIn=expires_in,
            )

    async def read(self, key: str) -> AsyncIterator[bytes]:
        async with self.options.client() as s3:  # type: ignore[attr-defined]
            response = await s3.get_object(Bucket=self.bucket, Key=self.prefix + key)
            body = response["Body"]  # aiobotocore StreamingBody; `async with ... as` gives
            async with body:  # the raw aiohttp response, whose read() takes no size
                async for chunk in body.iter_chunks(READ_CHUNK):
                    yield chunk

    async def delete(self, keys: builtins.list[str]) -> int:
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


#: Objects listed and deleted per round by :func:`clear` (S3 DeleteObjects takes 1000).
DELETE_BATCH = 1000


async def usage(store: ObjectStore) -> tuple[int, int]:
    """``(objects, bytes)`` under ``store``'s prefix."""
    count = size = 0
    async for _key, n in store.list():
        count, size = count + 1, size + n
    return count, size


async def clear(store: ObjectStore, progress: Callable[[int], object] | None = None) -> int:
    """Delete every object under ``store``'s prefix in rounds of at most DELETE_BATCH keys
    (bounded memory whatever the prefix holds), calling ``progress(deleted_so_far)`` after
    each round (e.g. an activity heartbeat); return how many were deleted. Safe to repeat."""
    deleted = 0
    while True:
        keys = []
        async for key, _size in store.list():
            keys.append(key)
            if len(keys) == DELETE_BATCH:
                break
        if not keys:
            return deleted
        await store.delete(keys)
        deleted += len(keys)
        if progress is not None:
            progress(deleted)


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
