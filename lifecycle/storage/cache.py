"""The cache store of the data map: a tenant's Redis keys, found with ``SCAN MATCH`` on the
map's patterns (``{tenant_key}`` replaced by the glob-escaped data key), counted, deleted with
``UNLINK`` in batches, and read for the export as JSON Lines records (key, type, value, TTL).

The specification's fourth store (``cache_entries``): a purge that leaves cached personal
data behind is not an erasure (GDPR Art. 17).
"""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from lifecycle.domain.errors import ConfigError
from lifecycle.storage.datamap import TENANT_KEY, CacheEntry

_GLOB = re.compile(r"([*?\[\]\\])")


def cache_store_name(index: int) -> str:
    """Name of a cache store in counts and certificates: ``cache[i]`` in data-map order."""
    return f"cache[{index}]"


def tenant_patterns(entry: CacheEntry, data_key: str) -> list[str]:
    """The entry's patterns for one tenant; the key's glob characters are escaped, so the
    data key ``1*`` never matches tenant ``12``'s keys."""
    escaped = _GLOB.sub(r"\\\1", data_key)
    return [p.replace(TENANT_KEY, escaped) for p in entry.patterns]


def _text(value: bytes) -> str | dict[str, str]:
    try:
        return value.decode()
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(value).decode()}


class CacheStore:
    """One ``[[cache]]`` entry bound to a Redis connection; close with :meth:`close`."""

    def __init__(self, entry: CacheEntry, where: str = "cache") -> None:
        self.entry, self.where = entry, where
        # redis-py's responses are typed bytes | str whatever decode_responses says: Any here
        self.redis: Any = Redis.from_url(entry.url)

    async def close(self) -> None:
        await self.redis.aclose()

    async def keys(self, data_key: str, batch: int = 500) -> AsyncIterator[list[bytes]]:
        """The tenant's keys, in batches of at most ``batch`` (``SCAN ... COUNT batch``; a
        key matched by two patterns comes once). Raises ConfigError when Redis is down."""
        seen: set[bytes] = set()
        try:
            for pattern in tenant_patterns(self.entry, data_key):
                found: list[bytes] = []
                async for key in self.redis.scan_iter(match=pattern, count=batch):
                    if key in seen:
                        continue
                    seen.add(key)
                    found.append(key)
                    if len(found) >= batch:
                        yield found
                        found = []
                if found:
                    yield found
        except (RedisError, OSError) as exc:
            raise ConfigError(f"{self.where}: cannot reach Redis: {exc}") from exc

    async def count(self, data_key: str) -> int:
        """Number of the tenant's keys."""
        return sum([len(found) async for found in self.keys(data_key)])

    async def purge(
        self, data_key: str, batch: int, on_batch: Callable[[int], object] | None = None
    ) -> int:
        """UNLINK the tenant's keys, ``batch`` keys per command, calling
        ``on_batch(deleted_so_far)`` after each (heartbeat); returns keys deleted. Resumable:
        a retry deletes what is left."""
        deleted = 0
        while True:
            batch_keys = [found async for found in self.keys(data_key, batch)]
            if not batch_keys:
                return deleted
            for found in batch_keys:
                deleted += int(await self.redis.unlink(*found))
                if on_batch is not None:
                    on_batch(deleted)

    async def records(self, data_key: str) -> AsyncIterator[dict[str, Any]]:
        """One export record per key: ``key``, ``type`` (string, hash, list, set, zset),
        ``value`` (text, or ``{"base64": ...}`` for bytes that are not UTF-8) and ``ttl``
        (seconds, None without expiry). Keys that expire meanwhile are left out."""
        async for found in self.keys(data_key):
            for key in found:
                kind = (await self.redis.type(key)).decode()
                value: Any
                if kind == "string":
                    raw = await self.redis.get(key)
                    if raw is None:
                        continue
                    value = _text(raw)
                elif kind == "hash":
                    value = {
                        str(_text(k)): _text(v) for k, v in (await self.redis.hgetall(key)).items()
                    }
                elif kind == "list":
                    value = [_text(v) for v in await self.redis.lrange(key, 0, -1)]
                elif kind == "set":
                    value = sorted(str(_text(v)) for v in await self.redis.smembers(key))
                elif kind == "zset":
                    pairs = await self.redis.zrange(key, 0, -1, withscores=True)
                    value = [[_text(m), score] for m, score in pairs]
                elif kind == "none":
                    continue
                else:
                    value = None  # streams and modules' types: named, not read
                ttl = int(await self.redis.ttl(key))
                yield {
                    "key": _text(key),
                    "type": kind,
                    "value": value,
                    "ttl": ttl if ttl >= 0 else None,
                }
