"""RedisStore: checkpoints in Redis (extra: ``pip install 'adk[redis]'``).

Each namespace is one Redis hash (``<prefix><namespace>``); ``put_if_absent``
is ``HSETNX``. Redis before 7.4 cannot expire single hash fields, so a TTL
applies to the whole namespace (a run's records expire together), refreshed
on every write.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from adk.errors import ConfigurationError


def _client(url: str) -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ConfigurationError(
            "RedisStore needs the redis driver: pip install 'adk[redis]'"
        ) from exc
    return aioredis.from_url(url)


class RedisStore:
    """Records in Redis hashes, one per namespace, under ``key_prefix``."""

    def __init__(self, url: str = "redis://127.0.0.1:6379/0", *, key_prefix: str = "adk:") -> None:
        self.url = url
        self.key_prefix = key_prefix
        self._redis = _client(url)

    def _key(self, namespace: str) -> str:
        return self.key_prefix + namespace

    async def get(self, namespace: str, name: str) -> bytes | None:
        """The record, or None."""
        value = await self._redis.hget(self._key(namespace), name)
        return bytes(value) if value is not None else None

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        """Write a record (and refresh the namespace's TTL)."""
        key = self._key(namespace)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, name, data)
            if ttl:
                pipe.pexpire(key, int(ttl * 1000))
            await pipe.execute()

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Write several records in one MULTI/EXEC transaction."""
        key = self._key(namespace)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=dict(items))
            if ttl:
                pipe.pexpire(key, int(ttl * 1000))
            await pipe.execute()

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        """``HSETNX``: atomic across processes."""
        key = self._key(namespace)
        written = bool(await self._redis.hsetnx(key, name, data))
        if written and ttl:
            await self._redis.pexpire(key, int(ttl * 1000))
        return written

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """Records whose name starts with ``prefix``, sorted."""
        records = await self._redis.hgetall(self._key(namespace))
        out = []
        for raw_name, value in records.items():
            name = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            if name.startswith(prefix):
                out.append((name, bytes(value)))
        out.sort()
        return out

    async def delete(self, namespace: str, name: str | None = None) -> None:
        """Delete a record or a namespace."""
        if name is None:
            await self._redis.delete(self._key(namespace))
        else:
            await self._redis.hdel(self._key(namespace), name)

    async def namespaces(self, prefix: str = "") -> list[str]:
        """Namespaces with records (a SCAN over the key prefix: an admin operation)."""
        found = set()
        async for raw in self._redis.scan_iter(match=self._key(prefix) + "*", count=500):
            key = raw.decode() if isinstance(raw, bytes) else str(raw)
            found.add(key[len(self.key_prefix) :])
        return sorted(found)

    async def close(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
