"""The local object store's writer: durable on commit, nothing left on abort, and the
write-behind flushes (``fdatasync`` in the background every WRITE_BEHIND bytes) neither lose
nor reorder bytes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lifecycle.storage import objectstore
from lifecycle.storage.objectstore import LocalStore


async def test_writes_across_write_behind_flushes_land_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flushed: list[int] = []
    real = os.fdatasync

    def counting(fd: int) -> None:
        flushed.append(fd)
        real(fd)

    monkeypatch.setattr(objectstore, "WRITE_BEHIND", 1000)
    monkeypatch.setattr(objectstore.os, "fdatasync", counting)
    store = LocalStore(tmp_path)
    blocks = [os.urandom(337) for _ in range(200)]  # 67,400 bytes
    async with store.writer("a/b.bin") as out:
        for block in blocks:
            out.write(block)
    assert (tmp_path / "a" / "b.bin").read_bytes() == b"".join(blocks)
    assert out.size == 67_400 and flushed  # a flush runs at a time: at least one ran
    assert [p.name for p in (tmp_path / "a").iterdir()] == ["b.bin"]  # no temporary left


async def test_an_aborted_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(objectstore, "WRITE_BEHIND", 10)
    store = LocalStore(tmp_path)
    with pytest.raises(RuntimeError, match="stop"):
        async with store.writer("c.bin") as out:
            out.write(os.urandom(5000))
            raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []
