"""ZIP members written in parts and joined without re-compression: the archive opens with
``zipfile``, passes ``testzip``, and holds exactly the bytes fed, with their SHA-256."""

from __future__ import annotations

import hashlib
import os
import random
import struct
import zipfile
import zlib
from pathlib import Path

from lifecycle.storage.objectstore import LocalStore
from lifecycle.storage.zipmember import BLOCK, ArchiveWriter, MemberWriter, Sha256, write_all

STAMP = (2026, 12, 3, 8, 0, 0)


def words(n: int, seed: int) -> bytes:
    rng = random.Random(seed)
    vocabulary = [os.urandom(4).hex() for _ in range(500)]
    return "\n".join(" ".join(rng.choices(vocabulary, k=12)) for _ in range(n)).encode()


def test_sha256_state_resumes_in_a_new_object() -> None:
    first, second = os.urandom(100_003), os.urandom(77)
    running = Sha256()
    running.update(first)
    resumed = Sha256(running.state())
    resumed.update(second)
    assert resumed.hexdigest() == hashlib.sha256(first + second).hexdigest()
    assert running.hexdigest() == hashlib.sha256(first).hexdigest()  # digest keeps the state


async def test_member_parts_joined_make_one_valid_archive(tmp_path: Path) -> None:
    """A table member of three parts (blocks deflated in parallel, checksums carried from part
    to part as the sidecars carry them), stored files with an empty one, then the manifest."""
    store = LocalStore(tmp_path)
    texts = [words(40_000, 1), words(3, 2), words(25_000, 3)]  # > BLOCK, tiny, > BLOCK
    assert len(texts[0]) > 2 * BLOCK
    crc, state, parts = 0, None, []
    for i, text in enumerate(texts):
        async with store.writer(f"p{i}", digest=False) as out:
            member = MemberWriter(out, crc, Sha256(state) if state else None)
            for start in range(0, len(text), 300_001):  # uneven writes across block edges
                await member.write(text[start : start + 300_001])
            await member.finish(last=i == len(texts) - 1)
        crc, state = member.crc32, member.sha.state()
        assert member.raw == len(text)
        parts.append((tmp_path / f"p{i}").read_bytes())
    table = b"".join(texts)
    deflated = b"".join(parts)
    single = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    assert len(deflated) < 1.02 * len(single.compress(table) + single.flush())
    files = [os.urandom(70_000), b"", os.urandom(5)]
    async with store.writer("archive.zip") as out:
        archive = ArchiveWriter(out, STAMP)
        header = archive.member(
            "tables/t.jsonl", deflated=True, crc32=crc, size=len(table), compressed=len(deflated)
        )
        write_all(out, [header, deflated])
        for i, data in enumerate(files):
            header = archive.member(
                f"files/{i}",
                deflated=False,
                crc32=zlib.crc32(data),
                size=len(data),
                compressed=len(data),
            )
            write_all(out, [header, data])
        archive.zip.writestr("manifest.json", "{}")
        archive.close()
    raw = (tmp_path / "archive.zip").read_bytes()
    assert out.sha256 == hashlib.sha256(raw).hexdigest() and out.size == len(raw)
    with zipfile.ZipFile(tmp_path / "archive.zip") as zf:
        assert zf.testzip() is None
        assert zf.namelist() == ["tables/t.jsonl", "files/0", "files/1", "files/2", "manifest.json"]
        assert zf.read("tables/t.jsonl") == table
        assert [zf.read(f"files/{i}") for i in range(3)] == files
    assert Sha256(state).hexdigest() == hashlib.sha256(table).hexdigest()


def test_local_header_of_a_member_over_4_gib_has_the_zip64_extra(tmp_path: Path) -> None:
    class Sink:
        def tell(self) -> int:
            return 0

        def write(self, data: bytes) -> int:
            return len(data)

        def flush(self) -> None:
            pass

    size = 5 * 2**30
    archive = ArchiveWriter(Sink(), STAMP)  # type: ignore[arg-type]
    header = archive.member("big", deflated=True, crc32=7, size=size, compressed=size - 1)
    compressed, uncompressed = struct.unpack("<II", header[18:26])
    assert (compressed, uncompressed) == (0xFFFFFFFF, 0xFFFFFFFF)
    tag, length, file_size, compress_size = struct.unpack("<HHQQ", header[-20:])
    assert (tag, length, file_size, compress_size) == (1, 16, size, size - 1)
    archive.close()
