"""SQLiteStore: checkpoints in one SQLite file (WAL mode); the embedded default."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS adk_records (
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    expires_at REAL,
    PRIMARY KEY (namespace, name)
) WITHOUT ROWID
"""


def _refresh(conn: sqlite3.Connection, namespace: str, until: float | None) -> None:
    """A write with a ttl renews the expiry of the whole namespace."""
    if until is not None:
        conn.execute("UPDATE adk_records SET expires_at=? WHERE namespace=?", (until, namespace))


class SQLiteStore:
    """Records in a SQLite database file, shared safely by several processes.

    The file is opened in WAL mode (readers never block the writer) with
    ``synchronous=NORMAL``: a committed record survives a process crash.
    Operations run in a worker thread so the event loop never blocks.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        self.path = str(path)
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        with self._lock:
            conn = self._connection()
            conn.execute(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            return fn(self._connection())

        return await anyio.to_thread.run_sync(work)

    async def get(self, namespace: str, name: str) -> bytes | None:
        """The record, or None."""

        def query(conn: sqlite3.Connection) -> bytes | None:
            row = conn.execute(
                "SELECT data FROM adk_records WHERE namespace=? AND name=?"
                " AND (expires_at IS NULL OR expires_at > ?)",
                (namespace, name, time.time()),
            ).fetchone()
            return bytes(row[0]) if row else None

        return await self._run(query)

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        """Write a record."""
        until = time.time() + ttl if ttl else None

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO adk_records (namespace, name, data, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    (namespace, name, data, until),
                )
                _refresh(conn, namespace, until)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._run(write)

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Write several records in one transaction and one trip to the worker thread."""
        until = time.time() + ttl if ttl else None
        rows = [(namespace, name, data, until) for name, data in items]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(
                    "INSERT OR REPLACE INTO adk_records (namespace, name, data, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    rows,
                )
                _refresh(conn, namespace, until)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        await self._run(write)

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        """Write a record unless a live one exists (atomic: one statement in one transaction)."""
        now = time.time()
        until = now + ttl if ttl else None

        def write(conn: sqlite3.Connection) -> bool:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute(
                    "DELETE FROM adk_records WHERE namespace=? AND name=? AND expires_at <= ?",
                    (namespace, name, now),
                )
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO adk_records (namespace, name, data, expires_at)"
                    " VALUES (?, ?, ?, ?)",
                    (namespace, name, data, until),
                )
                written = cursor.rowcount == 1
                if written:
                    _refresh(conn, namespace, until)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return written

        return await self._run(write)

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """Live records whose name starts with ``prefix``, sorted."""

        def query(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
            rows = conn.execute(
                "SELECT name, data FROM adk_records WHERE namespace=? AND name >= ?"
                " AND name < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY name",
                (namespace, prefix, prefix + "\U0010ffff", time.time()),
            ).fetchall()
            return [(str(n), bytes(d)) for n, d in rows if str(n).startswith(prefix)]

        return await self._run(query)

    async def delete(self, namespace: str, name: str | None = None) -> None:
        """Delete a record or a namespace."""

        def write(conn: sqlite3.Connection) -> None:
            if name is None:
                conn.execute("DELETE FROM adk_records WHERE namespace=?", (namespace,))
            else:
                conn.execute(
                    "DELETE FROM adk_records WHERE namespace=? AND name=?", (namespace, name)
                )

        await self._run(write)

    async def namespaces(self, prefix: str = "") -> list[str]:
        """Namespaces with live records."""

        def query(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT DISTINCT namespace FROM adk_records WHERE namespace >= ?"
                " AND (expires_at IS NULL OR expires_at > ?) ORDER BY namespace",
                (prefix, time.time()),
            ).fetchall()
            return [str(ns) for (ns,) in rows if str(ns).startswith(prefix)]

        return await self._run(query)

    async def close(self) -> None:
        """Close this thread's connection (worker threads' connections close with them)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
