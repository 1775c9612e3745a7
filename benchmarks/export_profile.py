"""Where an export's CPU goes: each step of a table chunk timed alone (CPU and wall).

    .venv/bin/python -m benchmarks.export_profile [--size-mb 100]

Builds the table of ``benchmarks/export_throughput.py`` (``--size-mb`` of ~1 kB rows in
SQLite), then times, over the whole table: reading the keyset pages (SQLAlchemy + aiosqlite),
encoding the rows (``encode_row``), deflating them with ``MemberWriter`` (blocks on the pool,
CRC-32 and SHA-256) into a sink, and the floor's own work on the same bytes (one ``zlib``
stream + ``hashlib.sha256`` + ``zlib.crc32`` in one thread). CPU = process CPU seconds (all
threads); the deflate's wall time shows what the pool wins on this machine's free cores.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import shutil
import tempfile
import time
import zlib
from pathlib import Path

from benchmarks.export_throughput import MB, build_app
from lifecycle.storage.datamap import load_datamap
from lifecycle.storage.jsonl import encode_row, row_encoder
from lifecycle.storage.objectstore import ObjectWriter
from lifecycle.storage.stores import TenantStores
from lifecycle.storage.zipmember import LEVEL, MemberWriter


class Sink(ObjectWriter):
    """An object writer that keeps nothing (the staging write is not what is measured)."""

    def __init__(self) -> None:
        super().__init__(digest=False)

    def _put(self, data: bytes | memoryview) -> None:
        pass


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="export-profile-"))
    try:
        stores = await TenantStores.open(
            load_datamap(await build_app(work, args.size_mb * MB, 1.0))
        )
        entry = stores.datamap.tables[0]
        encode = encode_row if args.reference_encoder else row_encoder(stores.table(entry))
        cpu = {"fetch": 0.0, "encode": 0.0}
        pages: list[bytes] = []
        after = None
        while True:
            c0 = time.process_time()
            page = await stores.fetch_page(entry, "1", after, 4000)
            c1 = time.process_time()
            pages.append(b"".join([encode(row) for row in page]))
            cpu["fetch"] += c1 - c0
            cpu["encode"] += time.process_time() - c1
            if len(page) < 4000:
                break
            after = [page[-1]["id"]]
        await stores.close()
        size = sum(map(len, pages)) / MB
        c0, w0 = time.process_time(), time.perf_counter()
        member = MemberWriter(Sink())
        for data in pages:
            await member.write(data)
        await member.finish(last=True)
        deflate_cpu, deflate_wall = time.process_time() - c0, time.perf_counter() - w0
        c0, w0 = time.process_time(), time.perf_counter()
        compressor, digest, crc = zlib.compressobj(LEVEL, zlib.DEFLATED, -15), hashlib.sha256(), 0
        for data in pages:
            compressor.compress(data)
            digest.update(data)
            crc = zlib.crc32(data, crc)
        compressor.flush()
        floor_cpu, floor_wall = time.process_time() - c0, time.perf_counter() - w0
        print(f"{size:.0f} MB of JSON Lines ({args.size_mb} MB asked); CPU seconds per 100 MB:")
        print(f"  read pages (SQLAlchemy + aiosqlite)   {cpu['fetch'] / size * 100:5.2f}")
        print(f"  encode rows (orjson)                  {cpu['encode'] / size * 100:5.2f}")
        print(
            f"  deflate + CRC + SHA-256 (pool)        {deflate_cpu / size * 100:5.2f}  "
            f"(wall {deflate_wall / size * 100:.2f})"
        )
        print(
            f"  floor: zlib + crc32 + sha256, 1 thread {floor_cpu / size * 100:5.2f}  "
            f"(wall {floor_wall / size * 100:.2f})"
        )
        extra = cpu["fetch"] + cpu["encode"] + deflate_cpu - floor_cpu
        print(f"  the chunk's CPU over the floor's: {extra / size * 100:+.2f} s per 100 MB")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=100)
    parser.add_argument(
        "--reference-encoder",
        action="store_true",
        help="encode with encode_row (the per-value path) instead of the table's row_encoder",
    )
    asyncio.run(main(parser.parse_args()))
