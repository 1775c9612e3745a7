"""ZIP members written in parts by chunk activities, then joined into an archive as they are.

A table's JSON Lines (or one part of a split table) are one ZIP member written by a chain of
chunks. Each chunk deflates its rows into raw DEFLATE blocks (1 MiB of input each,
compressed in parallel on a thread pool bounded by the cores, GIL released; each block is
primed with the previous 32 KiB, as pigz does, so the ratio is that of one stream). The
compressor is zlib-ng at zlib's default level 6 (zipfile's): on the export benchmark's rows
it deflates 1.8x faster than zlib with a slightly smaller output (44.3% against 45.7%), and
any ZIP reader inflates it. Every block but the member's last ends
with a sync flush, so the chunks' parts concatenated form one valid DEFLATE stream. The
member's CRC-32 and SHA-256 run once over the input, in order, and are carried from one
chunk to the next through its sidecar (:class:`Sha256` saves and resumes OpenSSL's state).

The assembly (:class:`ArchiveWriter`) writes each member's local header from the known CRC
and sizes, copies the parts byte for byte, and lets ``zipfile`` write the last entries and
the central directory (ZIP64 where needed): no re-compression and no second pass to hash.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import hashlib
import os
import zipfile
from collections import deque
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, cast

from zlib_ng import zlib_ng

from lifecycle.storage.objectstore import ObjectWriter

BLOCK = 1024 * 1024  #: input bytes per DEFLATE block
WINDOW = 32 * 1024  #: DEFLATE's window: the dictionary a block is primed with
LEVEL = 6  #: zlib's default level, the one zipfile deflates with
#: blocks in flight per writer: enough to keep every core busy, and a memory bound
IN_FLIGHT = (os.cpu_count() or 1) + 1

_DEFLATE = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="deflate")
#: one thread hashes in submission order, so each writer's blocks are hashed in sequence
_DIGEST = ThreadPoolExecutor(1, thread_name_prefix="digest")


def _libcrypto() -> ctypes.CDLL:
    """OpenSSL's libcrypto, the one ``hashlib`` uses (SHA256_Init/Update/Final)."""
    for name in (ctypes.util.find_library("crypto"), "libcrypto.so.3", "libcrypto.so"):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)  # CDLL calls release the GIL
        except OSError:
            continue
        lib.SHA256_Init.argtypes = [ctypes.c_void_p]
        lib.SHA256_Update.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
        lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
        return lib
    raise ImportError("exports need OpenSSL's libcrypto (SHA-256 resumed across chunks)")


_CRYPTO = _libcrypto()


class Sha256:
    """SHA-256 whose running state can be saved (:meth:`state`, hex) and resumed by another
    process: ``Sha256(state)``. The state is OpenSSL's ``SHA256_CTX`` (112 bytes)."""

    CTX_BYTES = 112

    def __init__(self, state: str | None = None) -> None:
        if state is None:
            self._ctx = ctypes.create_string_buffer(self.CTX_BYTES)
            _CRYPTO.SHA256_Init(self._ctx)
        else:
            self._ctx = ctypes.create_string_buffer(bytes.fromhex(state), self.CTX_BYTES)

    def update(self, data: bytes) -> None:
        """Feed ``data`` (OpenSSL runs without the GIL)."""
        _CRYPTO.SHA256_Update(self._ctx, data, len(data))

    def state(self) -> str:
        """The running state, hex (224 characters), for :class:`Sha256` to resume."""
        return self._ctx.raw.hex()

    def hexdigest(self) -> str:
        """The digest of what was fed so far (the running state is kept)."""
        ctx = ctypes.create_string_buffer(self._ctx.raw, self.CTX_BYTES)
        digest = ctypes.create_string_buffer(32)
        _CRYPTO.SHA256_Final(digest, ctx)
        return digest.raw.hex()


if Sha256().hexdigest() != hashlib.sha256().hexdigest():  # a libcrypto of another layout
    raise ImportError("libcrypto's SHA256_CTX is not the expected 112-byte state")


def _deflate(block: bytes, primer: bytes, last: bool) -> bytes:
    """Raw DEFLATE of ``block``: ends the stream when ``last``, else a sync flush (byte
    aligned, so the next block's output can follow it)."""
    if primer:
        compressor = zlib_ng.compressobj(LEVEL, zlib_ng.DEFLATED, -15, zdict=primer)
    else:
        compressor = zlib_ng.compressobj(LEVEL, zlib_ng.DEFLATED, -15)
    return compressor.compress(block) + compressor.flush(
        zlib_ng.Z_FINISH if last else zlib_ng.Z_SYNC_FLUSH
    )


class MemberWriter:
    """Writes one part of a deflated ZIP member to ``out`` (an open object writer).

    ``crc32`` and ``sha`` continue the member's checksums from the previous part (0 and a
    new :class:`Sha256` for the first). After :meth:`finish`, ``raw`` is this part's input
    bytes and ``crc32``/``sha`` cover the member so far. Memory: at most IN_FLIGHT blocks.
    """

    def __init__(self, out: ObjectWriter, crc32: int = 0, sha: Sha256 | None = None) -> None:
        self.out, self.crc32, self.sha = out, crc32, sha or Sha256()
        self.raw = 0
        self._buffer = bytearray()
        self._primer = b""
        self._blocks: deque[Future[bytes]] = deque()
        self._digest: Future[None] | None = None

    def _feed(self, block: bytes) -> None:
        self.sha.update(block)
        self.crc32 = zlib_ng.crc32(block, self.crc32)

    async def write(self, data: bytes) -> None:
        """Take ``data``; full blocks go to the pool, finished ones to ``out`` in order."""
        self.raw += len(data)
        self._buffer += data
        while len(self._buffer) >= BLOCK:
            block = bytes(self._buffer[:BLOCK])
            del self._buffer[:BLOCK]
            await self._submit(block, last=False)

    async def _submit(self, block: bytes, last: bool) -> None:
        self._digest = _DIGEST.submit(self._feed, block)
        self._blocks.append(_DEFLATE.submit(_deflate, block, self._primer, last))
        self._primer = block[-WINDOW:]
        while len(self._blocks) > IN_FLIGHT:
            await self._emit()

    async def _emit(self) -> None:
        data = await asyncio.wrap_future(self._blocks.popleft())
        await asyncio.to_thread(self.out.write, data)
        await self.out.drain()

    async def finish(self, last: bool) -> None:
        """Flush the rest; ``last`` ends the member's DEFLATE stream (its final chunk)."""
        if self._buffer or last:
            await self._submit(bytes(self._buffer), last)
            self._buffer.clear()
        while self._blocks:
            await self._emit()
        if self._digest is not None:
            await asyncio.wrap_future(self._digest)


class ArchiveWriter:
    """A ZIP streamed to a non-seekable object writer: members copied from finished parts
    (:meth:`member` writes the local header; the caller then writes exactly its
    ``compressed`` bytes) and entries written by ``zipfile`` itself (:attr:`zip`, e.g. the
    manifest), then :meth:`close` writes the central directory."""

    def __init__(self, out: ObjectWriter, date_time: tuple[int, int, int, int, int, int]):
        self.out, self.date_time = out, date_time
        # a write-only stream: zipfile's own entries get data descriptors instead of seeks
        self.zip = zipfile.ZipFile(cast(IO[bytes], out), "w", allowZip64=True)

    def member(
        self,
        name: str,
        *,
        deflated: bool,
        crc32: int,
        size: int,
        compressed: int,
        offset: int | None = None,
    ) -> bytes:
        """The local header of a member whose CRC-32 and sizes are known (ZIP64 extra field
        when a size needs it), to be written at ``offset`` (default: the writer's position);
        the member joins the central directory."""
        info = zipfile.ZipInfo(name, self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED if deflated else zipfile.ZIP_STORED
        info.external_attr = 0o600 << 16
        info.CRC, info.file_size, info.compress_size = crc32, size, compressed
        info.header_offset = self.out.tell() if offset is None else offset
        self.zip.filelist.append(info)
        self.zip.NameToInfo[name] = info
        return info.FileHeader()

    def abandon(self) -> None:
        """Forget the archive (its writer aborts): ``zipfile`` must not write a central
        directory to it when it is collected."""
        self.zip.fp = None

    def close(self) -> None:
        """Write the central directory (and ZIP64 end records when needed) where we are."""
        self.zip.start_dir = self.out.tell()
        self.zip.close()


def write_all(out: ObjectWriter, pieces: Iterable[bytes | memoryview]) -> None:
    """Write ``pieces`` in order (from a worker thread: the writer hashes as it writes)."""
    for piece in pieces:
        out.write(piece)
