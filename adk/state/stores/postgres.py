"""PostgresStore: checkpoints in PostgreSQL (extra: ``pip install 'adk[postgres]'``).

Operations borrow a connection from a bounded ``psycopg_pool.AsyncConnectionPool``
(one connection per operation, so concurrent runs never share a transaction),
opened lazily and once, with the table created once. Connection-level failures
raise :class:`~adk.state.stores.base.StoreUnavailable`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import anyio

from adk.errors import ConfigurationError
from adk.state.stores.base import StoreUnavailable, failure_reason, redact_address

DEFAULT_POOL_SIZE = 10
"""Connections a PostgresStore opens at most: enough for hundreds of concurrent runs
(an operation holds its connection for one round trip or one short transaction)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    data BYTEA NOT NULL,
    expires_at DOUBLE PRECISION,
    PRIMARY KEY (namespace, name)
)
"""
_LIVE = "(expires_at IS NULL OR expires_at > %s)"
_UPSERT = (
    "INSERT INTO {table} (namespace, name, data, expires_at) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (namespace, name) DO UPDATE"
    " SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at"
)
# Only live records are renewed: an expired record a purge has not deleted yet stays expired.
_RENEW = (
    "UPDATE {table} SET expires_at = %s WHERE namespace = %s"
    " AND (expires_at IS NULL OR expires_at > %s)"
)
# SQLSTATEs of a lost or refused connection: class 08, the server shutting down or
# starting up (57P01-57P03), too many clients (53300).
_UNAVAILABLE_STATES = ("57P01", "57P02", "57P03", "53300")


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"PostgresStore {name} must be a positive number, got {value!r}")
    return float(value)


def _is_connection_failure(exc: BaseException) -> bool:
    """True for errors that mean "the server cannot be reached", not "the query is wrong"."""
    import psycopg
    import psycopg_pool

    if isinstance(exc, psycopg_pool.PoolTimeout | psycopg_pool.PoolClosed):
        return True
    if isinstance(exc, psycopg.OperationalError):
        state = exc.sqlstate
        return state is None or state.startswith("08") or state in _UNAVAILABLE_STATES
    return isinstance(exc, OSError)  # includes TimeoutError


class PostgresStore:
    """Records in one PostgreSQL table; ``put_if_absent`` is ``INSERT ... ON CONFLICT``.

    Args:
        dsn: a libpq connection string or URL, such as
            ``"postgresql://postgres@127.0.0.1/test"``. Not needed with ``pool``.
        table: the table (created if missing), so that applications or tests can
            share a database.
        pool_size: the most connections the store opens (it keeps one open when
            idle): concurrent operations beyond it wait for a free connection.
            With ``pool``, the pool's own ``max_size`` applies instead.
        pool: an ``AsyncConnectionPool`` of the application to use instead of a
            pool of the store's own. The store opens it if needed but never
            closes it; its connections may be in autocommit mode or not.
        connect_timeout: seconds to wait for a new connection to the server.
        pool_timeout: seconds an operation waits for a free pooled connection
            before raising ``StoreUnavailable``.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        table: str = "adk_records",
        pool_size: int = DEFAULT_POOL_SIZE,
        pool: Any = None,
        connect_timeout: float = 5.0,
        pool_timeout: float = 10.0,
    ) -> None:
        if not table.replace("_", "").isalnum() or table[0].isdigit():
            raise ConfigurationError(
                f"PostgresStore table must be letters, digits and '_', got {table!r}"
            )
        if (dsn is None) == (pool is None):
            raise ConfigurationError("PostgresStore needs either a dsn or a pool (not both)")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigurationError(
                f"PostgresStore pool_size must be an int >= 1, got {pool_size!r}"
            )
        if pool is None:
            missing = [
                m for m in ("psycopg", "psycopg_pool") if importlib.util.find_spec(m) is None
            ]
            if missing:
                raise ConfigurationError(
                    f"PostgresStore needs {' and '.join(missing)}: pip install 'adk[postgres]'"
                )
        self.dsn = dsn
        self.table = table
        self.pool_size: int = pool.max_size if pool is not None else pool_size
        self.connect_timeout = _positive("connect_timeout", connect_timeout)
        self.pool_timeout = _positive("pool_timeout", pool_timeout)
        self.address = redact_address(dsn if dsn is not None else str(pool.conninfo))
        self._own_pool = pool is None
        self._pool: Any = pool
        self._ready = False  # the pool is open and the table exists
        self._lock = anyio.Lock()
        self._sql = {
            "get": f"SELECT data FROM {table} WHERE namespace=%s AND name=%s AND {_LIVE}",
            "upsert": _UPSERT.format(table=table),
            "renew": _RENEW.format(table=table),
            "insert_if_absent": _UPSERT.format(table=table)
            + f" WHERE {table}.expires_at IS NOT NULL AND {table}.expires_at <= %s",
            "scan": f"SELECT name, data FROM {table} WHERE namespace=%s"
            f' AND starts_with(name, %s) AND {_LIVE} ORDER BY name COLLATE "C"',
            "delete_namespace": f"DELETE FROM {table} WHERE namespace=%s",
            "purge": f"DELETE FROM {table} WHERE expires_at IS NOT NULL AND expires_at <= %s",
            "delete": f"DELETE FROM {table} WHERE namespace=%s AND name=%s",
            "delete_many": f"DELETE FROM {table} WHERE namespace=%s AND name = ANY(%s)",
            "namespaces": f"SELECT DISTINCT namespace FROM {table}"
            f" WHERE starts_with(namespace, %s) AND {_LIVE} ORDER BY namespace",
        }

    def _unavailable(self, operation: str, exc: BaseException) -> StoreUnavailable:
        """The StoreUnavailable for ``exc``, with the DSN's password masked in its reason."""
        password = None
        if self.dsn is not None:
            from psycopg.conninfo import conninfo_to_dict

            try:
                password = conninfo_to_dict(self.dsn).get("password")
            except Exception:  # a DSN libpq cannot parse has no password to hide
                password = None
        secret = None if password is None else str(password)
        return StoreUnavailable("postgres", self.address, operation, failure_reason(exc, secret))

    async def _open(self) -> None:
        """Open the pool (if it is the store's) and create the table: once, under the lock."""
        import psycopg
        from psycopg_pool import AsyncConnectionPool

        if not self._own_pool:
            await self._pool.open()
            async with self._pool.connection(timeout=self.pool_timeout) as conn:
                await self._create_table(conn)
            self._ready = True
            return
        # One direct connection first: a refused or failed connect is reported at once with
        # the server's reason (a pool would retry until its timeout), and it creates the table.
        libpq_timeout = max(2, math.ceil(self.connect_timeout))  # libpq: whole seconds, >= 2
        with anyio.fail_after(self.connect_timeout):
            conn = await psycopg.AsyncConnection.connect(
                self.dsn or "", autocommit=True, connect_timeout=libpq_timeout
            )
        async with conn:
            await self._create_table(conn)
        pool = AsyncConnectionPool(
            self.dsn or "",
            min_size=1,
            max_size=self.pool_size,
            open=False,
            timeout=self.pool_timeout,
            kwargs={"autocommit": True, "connect_timeout": libpq_timeout},
            name=f"adk-{self.table}",
        )
        await pool.open()
        self._pool, self._ready = pool, True

    async def _create_table(self, conn: Any) -> None:
        from psycopg import errors

        try:
            async with conn.transaction():
                await conn.execute(_SCHEMA.format(table=self.table))
        except (errors.UniqueViolation, errors.DuplicateTable):
            pass  # another process created it at the same moment

    @asynccontextmanager
    async def _connection(self, operation: str) -> AsyncIterator[Any]:
        """A pooled connection for one operation; connection failures become StoreUnavailable."""
        try:
            if not self._ready:
                async with self._lock:
                    if not self._ready:
                        await self._open()
            async with self._pool.connection(timeout=self.pool_timeout) as conn:
                yield conn
        except Exception as exc:
            if _is_connection_failure(exc):
                raise self._unavailable(operation, exc) from exc
            raise

    async def get(self, namespace: str, name: str) -> bytes | None:
        """The record, or None."""
        async with self._connection("get") as conn:
            cursor = await conn.execute(self._sql["get"], (namespace, name, time.time()))
            row = await cursor.fetchone()
        return bytes(row[0]) if row else None

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        """Write a record."""
        await self._put_many("put", namespace, [(name, data)], ttl)

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Write several records in one transaction, on a connection of its own."""
        await self._put_many("put_many", namespace, items, ttl)

    async def _put_many(
        self,
        operation: str,
        namespace: str,
        items: Sequence[tuple[str, bytes]],
        ttl: float | None,
    ) -> None:
        until = time.time() + ttl if ttl else None
        rows = [(namespace, name, data, until) for name, data in items]
        async with self._connection(operation) as conn:
            if len(rows) == 1 and until is None:  # one statement: atomic on its own
                await conn.execute(self._sql["upsert"], rows[0])
                return
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(self._sql["upsert"], rows)
                if until is not None:  # a write with a ttl renews the whole namespace
                    await cursor.execute(self._sql["renew"], (until, namespace, time.time()))

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        """Atomic insert; an expired record counts as absent."""
        now = time.time()
        until = now + ttl if ttl else None
        params = (namespace, name, data, until, now)
        async with self._connection("put_if_absent") as conn:
            if until is None:  # one statement: atomic on its own
                cursor = await conn.execute(self._sql["insert_if_absent"], params)
                return bool(cursor.rowcount == 1)
            async with conn.transaction():
                cursor = await conn.execute(self._sql["insert_if_absent"], params)
                written = bool(cursor.rowcount == 1)
                if written:
                    await conn.execute(self._sql["renew"], (until, namespace, now))
        return written

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """Live records whose name starts with ``prefix``, sorted."""
        async with self._connection("scan") as conn:
            cursor = await conn.execute(self._sql["scan"], (namespace, prefix, time.time()))
            rows = await cursor.fetchall()
        return [(str(n), bytes(d)) for n, d in rows]

    async def delete(self, namespace: str, name: str | None = None) -> None:
        """Delete a record or a namespace."""
        async with self._connection("delete") as conn:
            if name is None:
                await conn.execute(self._sql["delete_namespace"], (namespace,))
            else:
                await conn.execute(self._sql["delete"], (namespace, name))

    async def delete_many(self, namespace: str, names: Sequence[str]) -> None:
        """Delete several records of one namespace in one round trip (compaction uses it)."""
        if names:
            async with self._connection("delete_many") as conn:
                await conn.execute(self._sql["delete_many"], (namespace, list(names)))

    async def namespaces(self, prefix: str = "") -> list[str]:
        """Namespaces with live records."""
        async with self._connection("namespaces") as conn:
            cursor = await conn.execute(self._sql["namespaces"], (prefix, time.time()))
            rows = await cursor.fetchall()
        return [str(ns) for (ns,) in rows]

    async def notify(self, channel: str, message: str) -> None:
        """``NOTIFY`` subscribers of ``channel`` with ``message`` (sent when the write commits).

        PostgreSQL channel names are short identifiers, so every logical
        channel of the store shares one PostgreSQL channel named after the
        table; the payload is ``<channel>\\n<message>`` and subscribers keep
        their own channel's.
        """
        async with self._connection("notify") as conn:
            await conn.execute("SELECT pg_notify(%s, %s)", (self.table, f"{channel}\n{message}"))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[PostgresSubscription]:
        """``LISTEN`` on a dedicated autocommit connection (not a pooled one), closed on exit."""
        import psycopg

        conninfo = self.dsn if self.dsn is not None else str(self._pool.conninfo)
        libpq_timeout = max(2, math.ceil(self.connect_timeout))
        try:
            with anyio.fail_after(self.connect_timeout):
                conn = await psycopg.AsyncConnection.connect(
                    conninfo, autocommit=True, connect_timeout=libpq_timeout
                )
        except Exception as exc:
            if _is_connection_failure(exc):
                raise self._unavailable("subscribe", exc) from exc
            raise
        try:
            subscription = PostgresSubscription(self, conn, channel)
            await subscription.call(conn.execute(f'LISTEN "{self.table}"'))
            yield subscription
        finally:
            with contextlib.suppress(Exception):  # closing a dead connection may fail
                await conn.close()

    async def purge_expired(self) -> int:
        """Delete every expired record (reads already skip them); the number deleted."""
        async with self._connection("purge_expired") as conn:
            cursor = await conn.execute(self._sql["purge"], (time.time(),))
            return int(cursor.rowcount)

    async def close(self) -> None:
        """Close the store's own pool (the next operation opens a new one).

        A pool the application passed is left open: it is the application's.
        """
        async with self._lock:
            if self._own_pool and self._pool is not None:
                pool, self._pool, self._ready = self._pool, None, False
                await pool.close()


class PostgresSubscription:
    """A LISTEN subscription of a :class:`PostgresStore` (see ``PostgresStore.subscribe``)."""

    def __init__(self, store: PostgresStore, conn: Any, channel: str) -> None:
        self._store = store
        self._conn = conn
        self._prefix = channel + "\n"

    async def call(self, awaitable: Any) -> Any:
        """Await a command on the connection; connection errors become StoreUnavailable."""
        try:
            return await awaitable
        except Exception as exc:
            if _is_connection_failure(exc):
                raise self._store._unavailable("subscribe", exc) from exc
            raise

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a notification on the channel; True if one came."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            woken = await self.call(self._next(remaining))
            if woken:
                return True
        return False

    async def _next(self, seconds: float) -> bool:
        """One notification within ``seconds``: True if it was for this channel."""
        async for note in self._conn.notifies(timeout=seconds, stop_after=1):
            return bool(note.payload.startswith(self._prefix))
        return False
