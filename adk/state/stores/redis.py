"""RedisStore: checkpoints in Redis (extra: ``pip install 'adk[redis]'``).

Each namespace is one Redis hash (``<prefix><namespace>``); ``put_if_absent``
is ``HSETNX``. Redis before 7.4 cannot expire single hash fields, so a TTL
applies to the whole namespace (a run's records expire together), refreshed
on every write. Connections come from a bounded, blocking pool; connection
failures raise :class:`~adk.state.stores.base.StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio

from adk.errors import ConfigurationError
from adk.state.stores.base import StoreUnavailable, failure_reason, redact_address

DEFAULT_MAX_CONNECTIONS = 50
"""Connections a RedisStore opens at most; more concurrent operations wait for one."""


def _driver() -> Any:
    try:
        import redis.asyncio as aioredis
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ConfigurationError(
            "RedisStore needs the redis driver: pip install 'adk[redis]'"
        ) from exc
    return aioredis


def _timeout(name: str, value: float | None, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        allowed = "a positive number or None" if optional else "a positive number"
        raise ConfigurationError(f"RedisStore {name} must be {allowed}, got {value!r}")
    return float(value)


class RedisStore:
    """Records in Redis hashes, one per namespace, under ``key_prefix``.

    Args:
        url: the server, e.g. ``"redis://:password@10.0.0.5:6379/0"``.
        key_prefix: prepended to every key; one per application or test keeps
            their runs apart.
        max_connections: the most connections the store opens. Concurrent
            operations beyond it wait for a free one (a blocking pool): a
            thousand concurrent runs share them instead of failing.
        pool_timeout: seconds an operation waits for a free connection before
            raising ``StoreUnavailable``.
        connect_timeout: seconds to wait for a new connection to the server.
        socket_timeout: seconds to wait for a reply (``None``: forever). Keeps an
            operation from hanging on a server that stopped answering.

    Commands are not retried by the driver: a retried ``HSETNX`` whose first
    attempt reached the server would report a claim this process made as taken.
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        key_prefix: str = "adk:",
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        pool_timeout: float = 10.0,
        connect_timeout: float = 5.0,
        socket_timeout: float | None = 30.0,
    ) -> None:
        if (
            isinstance(max_connections, bool)
            or not isinstance(max_connections, int)
            or max_connections < 1
        ):
            raise ConfigurationError(
                f"RedisStore max_connections must be an int >= 1, got {max_connections!r}"
            )
        self.url = url
        self.key_prefix = key_prefix
        self.max_connections = max_connections
        self.pool_timeout = _timeout("pool_timeout", pool_timeout)
        self.connect_timeout = _timeout("connect_timeout", connect_timeout)
        self.socket_timeout = _timeout("socket_timeout", socket_timeout, optional=True)
        self.address = redact_address(url)
        self._password = urlsplit(url).password
        aioredis = _driver()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import (
            AuthenticationError,
            AuthorizationError,
            ConnectionError as RedisConnectionError,
            TimeoutError as RedisTimeoutError,
        )

        self._failures: tuple[type[BaseException], ...] = (
            RedisConnectionError,
            RedisTimeoutError,
            OSError,  # includes TimeoutError
        )
        self._not_failures: tuple[type[BaseException], ...] = (
            AuthenticationError,  # a ConnectionError in redis-py, but a wrong password
            AuthorizationError,
        )
        self._pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=self.pool_timeout,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=self.socket_timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = aioredis.Redis(connection_pool=self._pool)
        self._turns = anyio.Semaphore(max_connections)

    def _key(self, namespace: str) -> str:
        return self.key_prefix + namespace

    @asynccontextmanager
    async def _guard(self, operation: str) -> AsyncIterator[None]:
        """A turn at one of the pool's connections; connection errors become StoreUnavailable.

        Operations queue for a turn first-come first-served: the driver's pool
        lets a newcomer take a connection another caller was woken up for, and
        under a load of thousands of operations some callers waited past the
        pool timeout. An operation uses one connection at a time, so with
        ``max_connections`` turns the pool itself never has to make anyone wait.
        """
        try:
            with anyio.fail_after(self.pool_timeout):
                await self._turns.acquire()
        except TimeoutError as exc:
            reason = (
                f"no connection came free within pool_timeout={self.pool_timeout:g} s"
                f" (max_connections={self.max_connections})"
            )
            raise StoreUnavailable("redis", self.address, operation, reason) from exc
        try:
            yield
        except self._failures as exc:
            if isinstance(exc, self._not_failures):
                raise
            reason = failure_reason(exc, self._password)
            raise StoreUnavailable("redis", self.address, operation, reason) from exc
        finally:
            self._turns.release()

    async def get(self, namespace: str, name: str) -> bytes | None:
        """The record, or None."""
        async with self._guard("get"):
            value = await self._redis.hget(self._key(namespace), name)
        return bytes(value) if value is not None else None

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        """Write a record (and refresh the namespace's TTL)."""
        await self._write("put", namespace, [(name, data)], ttl)

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Write several records in one MULTI/EXEC transaction."""
        await self._write("put_many", namespace, items, ttl)

    async def _write(
        self,
        operation: str,
        namespace: str,
        items: Sequence[tuple[str, bytes]],
        ttl: float | None,
    ) -> None:
        key = self._key(namespace)
        async with self._guard(operation), self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping=dict(items))
            if ttl:
                pipe.pexpire(key, int(ttl * 1000))
            await pipe.execute()

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        """``HSETNX``: atomic across processes."""
        key = self._key(namespace)
        async with self._guard("put_if_absent"):
            written = bool(await self._redis.hsetnx(key, name, data))
            if written and ttl:
                await self._redis.pexpire(key, int(ttl * 1000))
        return written

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """Records whose name starts with ``prefix``, sorted."""
        async with self._guard("scan"):
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
        async with self._guard("delete"):
            if name is None:
                await self._redis.delete(self._key(namespace))
            else:
                await self._redis.hdel(self._key(namespace), name)

    async def delete_many(self, namespace: str, names: Sequence[str]) -> None:
        """Delete several records of one namespace in one round trip (compaction uses it)."""
        if names:
            async with self._guard("delete_many"):
                await self._redis.hdel(self._key(namespace), *names)

    async def namespaces(self, prefix: str = "") -> list[str]:
        """Namespaces with records (a SCAN over the key prefix: an admin operation)."""
        found = set()
        async with self._guard("namespaces"):
            async for raw in self._redis.scan_iter(match=self._key(prefix) + "*", count=500):
                key = raw.decode() if isinstance(raw, bytes) else str(raw)
                found.add(key[len(self.key_prefix) :])
        return sorted(found)

    async def notify(self, channel: str, message: str) -> None:
        """``PUBLISH`` ``message`` on ``channel`` (under the key prefix); wakes subscribers."""
        async with self._guard("notify"):
            await self._redis.publish(self._key(channel), message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[RedisSubscription]:
        """``SUBSCRIBE`` to ``channel`` on a connection of its own (not the pool's), closed on exit.

        A dedicated connection, so that a thousand listeners never take the
        pool's connections from the store's operations.
        """
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        client = _driver().Redis.from_url(
            self.url,
            socket_connect_timeout=self.connect_timeout,
            socket_timeout=None,  # a subscriber waits for messages as long as it likes
            retry=Retry(NoBackoff(), 0),
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        subscription = RedisSubscription(self, pubsub)
        try:
            await subscription.call("subscribe", pubsub.subscribe(self._key(channel)))
            yield subscription
        finally:
            try:
                await pubsub.aclose()
                await client.aclose()
            except self._failures:
                pass  # the connection is already gone

    async def purge_expired(self) -> int:
        """Nothing to do: Redis deletes expired keys itself. Returns 0."""
        return 0

    async def close(self) -> None:
        """Close the pool's connections (the next operation opens new ones)."""
        await self._redis.aclose()
        await self._pool.disconnect()


class RedisSubscription:
    """A pub/sub subscription of a :class:`RedisStore` (see ``RedisStore.subscribe``)."""

    def __init__(self, store: RedisStore, pubsub: Any) -> None:
        self._store = store
        self._pubsub = pubsub

    async def call(self, operation: str, awaitable: Any) -> Any:
        """Await a pub/sub command; connection errors become StoreUnavailable."""
        store = self._store
        try:
            return await awaitable
        except store._failures as exc:
            if isinstance(exc, store._not_failures):
                raise
            reason = failure_reason(exc, store._password)
            raise StoreUnavailable("redis", store.address, operation, reason) from exc

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a message on the channel; True if one came."""
        get = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=seconds)
        return await self.call("subscribe", get) is not None
