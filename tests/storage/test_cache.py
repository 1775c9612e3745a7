"""The data map's cache store against the real Redis (a database index of the test's own):
patterns with ``{tenant_key}``, counting, SCAN + UNLINK in batches, export records."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from lifecycle.domain.errors import ConfigError
from lifecycle.storage.cache import CacheStore, tenant_patterns
from lifecycle.storage.datamap import CacheEntry, parse_datamap


async def _fill(url: str) -> None:
    redis = Redis.from_url(url)
    for tenant in ("1", "12", "1*"):
        await redis.set(f"app:{tenant}:profile", f"name of {tenant}")
        await redis.hset(f"app:{tenant}:stats", mapping={"clicks": "3", "views": "10"})
        await redis.rpush(f"app:{tenant}:recent", "a", "b")
        await redis.sadd(f"app:{tenant}:tags", "x", "y")
        await redis.zadd(f"app:{tenant}:top", {"ad-1": 2.0})
        for i in range(5):
            await redis.set(f"app:{tenant}:page:{i}", "cached", ex=3600)
        await redis.set(f"report:{tenant}", "weekly")
    await redis.aclose()


def test_the_data_map_reads_cache_entries_and_checks_them() -> None:
    text = (
        '[[cache]]\nurl = "${REDIS}"\npatterns = ["app:{tenant_key}:*", "report:{tenant_key}"]'
        "\nexport = true\n"
    )
    dm = parse_datamap(text, environ={"REDIS": "redis://127.0.0.1:6379/3"})
    assert dm.cache == [
        CacheEntry(
            url="redis://127.0.0.1:6379/3",
            patterns=["app:{tenant_key}:*", "report:{tenant_key}"],
            export=True,
        )
    ]
    with pytest.raises(ConfigError, match=r"cache\[0\]: pattern 'app:\*' has no \{tenant_key\}"):
        parse_datamap('[[cache]]\nurl = "redis://h"\npatterns = ["app:*"]\n')
    with pytest.raises(ConfigError, match="must start with redis://"):
        parse_datamap('[[cache]]\nurl = "http://h"\npatterns = ["{tenant_key}"]\n')
    assert (
        not parse_datamap('[[cache]]\nurl = "redis://h"\npatterns = ["{tenant_key}"]')
        .cache[0]
        .export
    )  # exported only when the map says so


async def test_count_purge_and_records_touch_only_the_tenants_keys(redis_url: str) -> None:
    await _fill(redis_url)
    entry = CacheEntry(url=redis_url, patterns=["app:{tenant_key}:*", "report:{tenant_key}"])
    # a data key's glob characters are escaped: "1*" never reaches tenant "12"
    assert tenant_patterns(entry, "1*") == ["app:1\\*:*", "report:1\\*"]
    cache = CacheStore(entry)
    try:
        assert [await cache.count(k) for k in ("1", "12", "1*", "2")] == [11, 11, 11, 0]
        records = {r["key"]: r async for r in cache.records("12")}
        assert records["app:12:profile"] == {
            "key": "app:12:profile",
            "type": "string",
            "value": "name of 12",
            "ttl": None,
        }
        assert records["app:12:stats"]["value"] == {"clicks": "3", "views": "10"}
        assert records["app:12:recent"]["value"] == ["a", "b"]
        assert records["app:12:tags"]["value"] == ["x", "y"]
        assert records["app:12:top"]["value"] == [["ad-1", 2.0]]
        assert 3500 < records["app:12:page:0"]["ttl"] <= 3600
        assert records["report:12"]["type"] == "string" and len(records) == 11

        beats: list[int] = []
        assert await cache.purge("1*", batch=3, on_batch=beats.append) == 11
        assert beats == sorted(beats) and len(beats) >= 4  # UNLINK in batches of 3
        assert await cache.count("1*") == 0
        assert [await cache.count(k) for k in ("1", "12")] == [11, 11]
        assert await cache.purge("1*", batch=3) == 0  # idempotent
    finally:
        await cache.close()
    redis = Redis.from_url(redis_url)
    assert await redis.get("app:1:profile") == b"name of 1"
    await redis.aclose()


async def test_an_unreachable_redis_is_a_config_error() -> None:
    cache = CacheStore(CacheEntry(url="redis://127.0.0.1:1/0", patterns=["{tenant_key}"]), "c")
    try:
        with pytest.raises(ConfigError, match="c: cannot reach Redis"):
            await cache.count("1")
    finally:
        await cache.close()
