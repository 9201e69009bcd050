"""A store that cannot be reached raises ``StoreUnavailable``, promptly, on every operation.

Real servers only: a private redis-server that the test kills, pauses or
restarts; a PostgreSQL port that nothing listens on; the shared PostgreSQL
with the store's own connections terminated or its one connection held.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from adk import PostgresStore, RedisStore, SQLiteStore
from adk.errors import AdkError, ConfigurationError
from adk.state.stores.base import CheckpointStore, StoreUnavailable
from tests.runner.stores import POSTGRES_DSN, dispose, service_unavailable
from tests.state.servers import free_port, private_redis

pytestmark = pytest.mark.anyio

PROMPT = 5.0  # seconds within which an operation on a dead server must fail

Operation = Callable[[CheckpointStore], Awaitable[Any]]
OPERATIONS: dict[str, Operation] = {
    "get": lambda s: s.get("run:a", "meta"),
    "put": lambda s: s.put("run:a", "meta", b"x", ttl=60),
    "put_many": lambda s: s.put_many("run:a", [("j:0000000000", b"j"), ("head", b"h")]),
    "put_if_absent": lambda s: s.put_if_absent("run:a", "claim:cp:000001", b"1"),
    "scan": lambda s: s.scan("run:a"),
    "delete": lambda s: s.delete("run:a", "meta"),
    "namespaces": lambda s: s.namespaces("run:"),
}


async def assert_every_operation_unavailable(
    store: CheckpointStore, kind: str, address: str, secret: str | None = None
) -> None:
    for name, operation in OPERATIONS.items():
        start = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            with anyio.fail_after(PROMPT + 5):  # a hang fails the test instead of blocking it
                await operation(store)
        elapsed = time.monotonic() - start
        error = caught.value
        assert elapsed < PROMPT, f"{name} took {elapsed:.1f} s to fail"
        assert isinstance(error, AdkError)
        assert (error.kind, error.operation, error.address) == (kind, name, address)
        assert error.__cause__ is not None  # chained to the driver's error
        message = str(error)
        assert kind in message and name in message and address in message
        if secret is not None:
            assert secret not in message and secret not in error.address


async def test_redis_store_raises_store_unavailable_when_its_server_dies(tmp_path: Path) -> None:
    with private_redis(tmp_path, password="s3cret-pw") as server:
        store = RedisStore(server.url, key_prefix="t:")
        await store.put("run:a", "meta", b"before")
        assert await store.get("run:a", "meta") == b"before"
        server.kill()
        address = f"redis://127.0.0.1:{server.port}/0"
        await assert_every_operation_unavailable(store, "redis", address, "s3cret-pw")
        await store.close()


async def test_redis_store_recovers_when_its_server_comes_back(tmp_path: Path) -> None:
    with private_redis(tmp_path) as server:
        store = RedisStore(server.url)
        await store.put("run:a", "meta", b"x")
        server.kill()
        with pytest.raises(StoreUnavailable):
            await store.get("run:a", "meta")
        server.start()  # the same port, an empty server
        assert await store.get("run:a", "meta") is None
        await store.put("run:a", "meta", b"y")
        assert await store.get("run:a", "meta") == b"y"
        await store.close()


async def test_redis_store_times_out_on_a_hung_server_and_a_full_pool(tmp_path: Path) -> None:
    """A server that stops answering: the reply times out, the next caller's pool wait too."""
    with private_redis(tmp_path) as server:
        store = RedisStore(server.url, max_connections=1, pool_timeout=0.3, socket_timeout=1.5)
        await store.put("run:a", "meta", b"x")
        server.pause()
        outcomes: dict[str, float] = {}

        async def timed(name: str, operation: Operation) -> None:
            start = time.monotonic()
            with pytest.raises(StoreUnavailable) as caught:
                await operation(store)
            assert caught.value.operation == name
            outcomes[name] = time.monotonic() - start

        with anyio.fail_after(10):
            async with anyio.create_task_group() as group:
                group.start_soon(timed, "get", OPERATIONS["get"])
                await anyio.sleep(0.1)  # get holds the only connection, waiting for a reply
                group.start_soon(timed, "scan", OPERATIONS["scan"])
        assert outcomes["scan"] < 1.0  # gave up waiting for the pool after 0.3 s
        assert 1.0 <= outcomes["get"] < 3.0  # gave up waiting for the reply after 1.5 s
        server.resume()
        assert await store.get("run:a", "meta") == b"x"
        await store.close()


async def test_postgres_store_on_a_closed_port_raises_store_unavailable() -> None:
    port = free_port()
    store = PostgresStore(f"postgresql://postgres:s3cret-pw@127.0.0.1:{port}/test")
    address = f"postgresql://postgres@127.0.0.1:{port}/test"
    await assert_every_operation_unavailable(store, "postgres", address, "s3cret-pw")
    await store.close()


async def test_postgres_keyword_dsn_is_named_without_its_password() -> None:
    port = free_port()
    store = PostgresStore(f"host=127.0.0.1 port={port} dbname=test user=postgres password=pw42")
    with pytest.raises(StoreUnavailable) as caught:
        await store.get("run:a", "meta")
    assert caught.value.address == f"host=127.0.0.1 port={port} dbname=test user=postgres"
    assert "pw42" not in str(caught.value)
    await store.close()


async def _postgres_store(**options: Any) -> PostgresStore:
    application = f"adk_gone_{uuid.uuid4().hex[:8]}"
    dsn = f"{POSTGRES_DSN}{'&' if '?' in POSTGRES_DSN else '?'}application_name={application}"
    store = PostgresStore(dsn, table=f"adk_test_{uuid.uuid4().hex[:10]}", **options)
    try:
        await store.namespaces()
    except StoreUnavailable as exc:
        await store.close()
        service_unavailable("PostgreSQL", exc)
    return store


async def test_postgres_store_survives_its_connections_being_terminated() -> None:
    """The server drops the store's connections: StoreUnavailable at worst, then it reconnects."""
    psycopg = pytest.importorskip("psycopg")
    store = await _postgres_store(pool_size=3)
    try:
        await store.put("run:a", "meta", b"x")
        application = store.dsn.rsplit("application_name=", 1)[1]
        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True) as admin:
            cursor = await admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = %s",
                (application,),
            )
            row = await cursor.fetchone()
            assert row is not None and row[0] >= 1
        results: list[str] = []
        for _ in range(6):
            try:
                results.append(repr(await store.get("run:a", "meta")))
            except StoreUnavailable as exc:
                assert exc.operation == "get"
                results.append("unavailable")
        assert results[-1] == "b'x'", results  # the pool replaced the dead connections
    finally:
        await dispose(store)


async def test_postgres_store_times_out_waiting_for_its_pool() -> None:
    """The only pooled connection is busy (blocked on a row lock): the next caller gives up."""
    psycopg = pytest.importorskip("psycopg")
    store = await _postgres_store(pool_size=1, pool_timeout=0.3)
    try:
        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN) as blocker:
            # An uncommitted insert of the same key: put_if_absent waits for its lock.
            await blocker.execute(
                f"INSERT INTO {store.table} (namespace, name, data) VALUES ('run:a', 'claim', 'b')"
            )
            claimed: list[bool] = []

            async def claim() -> None:
                claimed.append(await store.put_if_absent("run:a", "claim", b"mine"))

            with anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    group.start_soon(claim)
                    await anyio.sleep(0.2)
                    start = time.monotonic()
                    with pytest.raises(StoreUnavailable) as caught:
                        await store.get("run:a", "meta")
                    assert time.monotonic() - start < 2.0
                    assert caught.value.operation == "get"
                    assert "0.3" in str(caught.value) or "pool" in str(caught.value)
                    await blocker.rollback()  # the claim goes through now
            assert claimed == [True]
    finally:
        await dispose(store)


def test_sqlite_store_in_a_missing_directory_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "no" / "such" / "dir" / "runs.db"
    with pytest.raises(ConfigurationError) as caught:
        SQLiteStore(path)
    message = str(caught.value)
    assert str(path) in message and "directory does not exist" in message
    assert str(tmp_path / "no" / "such" / "dir") in message


def test_sqlite_store_on_an_unopenable_file_raises_store_unavailable(tmp_path: Path) -> None:
    folder = tmp_path / "a-directory.db"
    folder.mkdir()  # a directory where the database file should be
    with pytest.raises(StoreUnavailable) as caught:
        SQLiteStore(folder)
    assert (caught.value.kind, caught.value.operation) == ("sqlite", "open")
    assert caught.value.address == str(folder)
    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_sqlite_store_locked_past_its_timeout_raises_store_unavailable(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    store = SQLiteStore(path, timeout=0.2)
    await store.put("run:a", "meta", b"x")
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        start = time.monotonic()
        with pytest.raises(StoreUnavailable) as caught:
            await store.put("run:a", "meta", b"y")
        assert time.monotonic() - start < PROMPT
        assert caught.value.operation == "put" and "locked" in str(caught.value)
    finally:
        other.execute("ROLLBACK")
        other.close()
    await store.put("run:a", "meta", b"z")
    assert await store.get("run:a", "meta") == b"z"
    await store.close()
