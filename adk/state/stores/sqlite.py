"""SQLiteStore: checkpoints in one SQLite file (WAL mode); the embedded default."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import anyio.to_thread

from adk.errors import ConfigurationError
from adk.state.stores.base import StoreUnavailable, failure_reason

T = TypeVar("T")

# Primary result codes of failures of the file or the machine rather than of the query:
# SQLITE_PERM, BUSY (locked past the timeout), LOCKED, READONLY, IOERR, FULL, CANTOPEN.
_UNAVAILABLE_CODES = frozenset({3, 5, 6, 8, 10, 13, 14})

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
    """A write with a ttl renews the expiry of the namespace's live records.

    An expired record that no purge has deleted yet stays expired: renewing
    it would bring old data back into a namespace reused after it expired.
    """
    if until is not None:
        conn.execute(
            "UPDATE adk_records SET expires_at=? WHERE namespace=?"
            " AND (expires_at IS NULL OR expires_at > ?)",
            (until, namespace, time.time()),
        )


class SQLiteStore:
    """Records in a SQLite database file, shared safely by several processes.

    The file is opened in WAL mode (readers never block the writer) with
    ``synchronous=NORMAL``: a committed record survives a process crash.
    Operations run in a worker thread so the event loop never blocks.

    The file is opened (and the table created) at construction, so a bad path
    fails at once: a missing directory raises ``ConfigurationError`` (SQLite
    creates the file, not its directory), a file that cannot be opened raises
    ``StoreUnavailable``. ``timeout`` is how long a write waits for another
    process's lock before raising ``StoreUnavailable``.
    """

    def __init__(self, path: str | Path, *, timeout: float = 30.0) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout < 0:
            raise ConfigurationError(
                f"SQLiteStore timeout must be a number of seconds >= 0, got {timeout!r}"
            )
        self.path = str(path)
        folder = Path(self.path).parent
        if self.path != ":memory:" and not folder.is_dir():
            raise ConfigurationError(
                f"SQLiteStore path {self.path!r}: directory does not exist: {str(folder)!r}"
                " (SQLite creates the database file, not its directory)"
            )
        self._timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        with self._lock, self._guard("open"):
            conn = self._connection()
            conn.execute(_SCHEMA)

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
            except BaseException:
                conn.close()
                raise
            self._local.conn = conn
        return conn

    @contextmanager
    def _guard(self, operation: str) -> Iterator[None]:
        """Turn SQLite's "cannot open / locked / I/O error" failures into StoreUnavailable."""
        try:
            yield
        except sqlite3.Error as exc:
            code = getattr(exc, "sqlite_errorcode", None)
            if code is None or code & 0xFF not in _UNAVAILABLE_CODES:
                raise
            raise StoreUnavailable("sqlite", self.path, operation, failure_reason(exc)) from exc

    async def _run(self, operation: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        def work() -> T:
            return fn(self._connection())

        with self._guard(operation):
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

        return await self._run("get", query)

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

        await self._run("put", write)

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

        await self._run("put_many", write)

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

        return await self._run("put_if_absent", write)

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """Live records whose name starts with ``prefix``, sorted."""

        def query(conn: sqlite3.Connection) -> list[tuple[str, bytes]]:
            rows = conn.execute(
                "SELECT name, data FROM adk_records WHERE namespace=? AND name >= ?"
                " AND name < ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY name",
                (namespace, prefix, prefix + "\U0010ffff", time.time()),
            ).fetchall()
            return [(str(n), bytes(d)) for n, d in rows if str(n).startswith(prefix)]

        return await self._run("scan", query)

    async def delete(self, namespace: str, name: str | None = None) -> None:
        """Delete a record or a namespace."""

        def write(conn: sqlite3.Connection) -> None:
            if name is None:
                conn.execute("DELETE FROM adk_records WHERE namespace=?", (namespace,))
            else:
                conn.execute(
                    "DELETE FROM adk_records WHERE namespace=? AND name=?", (namespace, name)
                )

        await self._run("delete", write)

    async def delete_many(self, namespace: str, names: Sequence[str]) -> None:
        """Delete several records of one namespace in one round trip (compaction uses it)."""
        rows = [(namespace, name) for name in names]

        def write(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("DELETE FROM adk_records WHERE namespace=? AND name=?", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

        if rows:
            await self._run("delete_many", write)

    async def namespaces(self, prefix: str = "") -> list[str]:
        """Namespaces with live records."""

        def query(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute(
                "SELECT DISTINCT namespace FROM adk_records WHERE namespace >= ?"
                " AND (expires_at IS NULL OR expires_at > ?) ORDER BY namespace",
                (prefix, time.time()),
            ).fetchall()
            return [str(ns) for (ns,) in rows if str(ns).startswith(prefix)]

        return await self._run("namespaces", query)

    async def purge_expired(self) -> int:
        """Delete every expired record (reads already skip them); the number deleted."""
        now = time.time()

        def write(conn: sqlite3.Connection) -> int:
            cursor = conn.execute(
                "DELETE FROM adk_records WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
            )
            return int(cursor.rowcount)

        return await self._run("purge_expired", write)

    async def close(self) -> None:
        """Close this thread's connection (worker threads' connections close with them)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
