"""PostgresStore: checkpoints in PostgreSQL (extra: ``pip install 'adk[postgres]'``)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from adk.errors import ConfigurationError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS {table} (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    data BYTEA NOT NULL,
    expires_at DOUBLE PRECISION,
    PRIMARY KEY (namespace, name)
)
"""


class PostgresStore:
    """Records in one PostgreSQL table; ``put_if_absent`` is ``INSERT ... ON CONFLICT DO NOTHING``.

    Connects lazily on first use with psycopg 3 (async). ``dsn`` is a libpq
    connection string such as ``"postgresql://postgres@127.0.0.1/test"``.
    """

    def __init__(self, dsn: str, *, table: str = "adk_records") -> None:
        if not table.replace("_", "").isalnum():
            raise ConfigurationError(f"invalid table name {table!r}")
        self.dsn = dsn
        self.table = table
        self._conn: Any = None

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            try:
                import psycopg
            except ImportError as exc:  # pragma: no cover - depends on the extra
                raise ConfigurationError(
                    "PostgresStore needs psycopg: pip install 'adk[postgres]'"
                ) from exc
            conn = await psycopg.AsyncConnection.connect(self.dsn, autocommit=True)
            await conn.execute(_SCHEMA.format(table=self.table))
            self._conn = conn
        return self._conn

    async def _execute(self, sql: str, params: tuple[Any, ...]) -> Any:
        conn = await self._connection()
        return await conn.execute(sql.format(table=self.table), params)

    async def get(self, namespace: str, name: str) -> bytes | None:
        """The record, or None."""
        cursor = await self._execute(
            "SELECT data FROM {table} WHERE namespace=%s AND name=%s"
            " AND (expires_at IS NULL OR expires_at > %s)",
            (namespace, name, time.time()),
        )
        row = await cursor.fetchone()
        return bytes(row[0]) if row else None

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        """Write a record."""
        await self.put_many(namespace, [(name, data)], ttl=ttl)

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Write several records in one transaction."""
        until = time.time() + ttl if ttl else None
        conn = await self._connection()
        async with conn.transaction(), conn.cursor() as cursor:
            await cursor.executemany(
                (
                    f"INSERT INTO {self.table} (namespace, name, data, expires_at)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (namespace, name) DO UPDATE"
                    " SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at"
                ),
                [(namespace, name, data, until) for name, data in items],
            )
            if until is not None:  # a write with a ttl renews the whole namespace
                await cursor.execute(
                    f"UPDATE {self.table} SET expires_at = %s WHERE namespace = %s",
                    (until, namespace),
                )

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        """Atomic insert; an expired record counts as absent."""
        now = time.time()
        until = now + ttl if ttl else None
        cursor = await self._execute(
            "INSERT INTO {table} (namespace, name, data, expires_at) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (namespace, name) DO UPDATE"
            " SET data = EXCLUDED.data, expires_at = EXCLUDED.expires_at"
            " WHERE {table}.expires_at IS NOT NULL AND {table}.expires_at <= %s",
            (namespace, name, data, until, now),
        )
        written = bool(cursor.rowcount == 1)
        if written and until is not None:
            await self._execute(
                "UPDATE {table} SET expires_at = %s WHERE namespace = %s", (until, namespace)
            )
        return written

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """Live records whose name starts with ``prefix``, sorted."""
        cursor = await self._execute(
            "SELECT name, data FROM {table} WHERE namespace=%s AND starts_with(name, %s)"
            ' AND (expires_at IS NULL OR expires_at > %s) ORDER BY name COLLATE "C"',
            (namespace, prefix, time.time()),
        )
        return [(str(n), bytes(d)) for n, d in await cursor.fetchall()]

    async def delete(self, namespace: str, name: str | None = None) -> None:
        """Delete a record or a namespace."""
        if name is None:
            await self._execute("DELETE FROM {table} WHERE namespace=%s", (namespace,))
        else:
            await self._execute(
                "DELETE FROM {table} WHERE namespace=%s AND name=%s", (namespace, name)
            )

    async def namespaces(self, prefix: str = "") -> list[str]:
        """Namespaces with live records."""
        cursor = await self._execute(
            "SELECT DISTINCT namespace FROM {table} WHERE starts_with(namespace, %s)"
            " AND (expires_at IS NULL OR expires_at > %s) ORDER BY namespace",
            (prefix, time.time()),
        )
        return [str(ns) for (ns,) in await cursor.fetchall()]

    async def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            await self._conn.close()
            self._conn = None
