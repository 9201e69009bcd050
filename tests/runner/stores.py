"""Fixtures that open each checkpoint store against real backends.

Redis and PostgreSQL tests talk to the servers on loopback. When a server is
down they skip, unless ADK_REQUIRE_SERVICES=1 (CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from adk import InMemoryStore, PostgresStore, RedisStore, SQLiteStore
from adk.state.stores.base import CheckpointStore

REDIS_URL = os.environ.get("ADK_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get("ADK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
STORE_KINDS = ["memory", "sqlite", "redis", "postgres"]
# The tests of tests/runner run on anyio's asyncio and trio backends; the Redis and PostgreSQL
# drivers (redis-py, psycopg) run on asyncio only, so their stores are tested there only.
ASYNCIO_ONLY = frozenset({"redis", "postgres"})
STORE_BACKENDS = [
    pytest.param((kind, backend), id=f"{kind}-{backend}")
    for kind in STORE_KINDS
    for backend in ("asyncio", "trio")
    if backend == "asyncio" or kind not in ASYNCIO_ONLY
]


def service_unavailable(what: str, exc: BaseException) -> None:
    message = f"{what} is not reachable: {exc}"
    if os.environ.get("ADK_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


async def open_test_store(kind: str, tmp_path: Path) -> CheckpointStore:
    """A fresh, isolated store of ``kind`` (unique key prefix / table per test)."""
    unique = uuid.uuid4().hex[:10]
    if kind == "memory":
        return InMemoryStore()
    if kind == "sqlite":
        return SQLiteStore(tmp_path / "checkpoints.db")
    if kind == "redis":
        store = RedisStore(REDIS_URL, key_prefix=f"adktest:{unique}:")
        try:
            await store.namespaces()
        except Exception as exc:
            service_unavailable("Redis", exc)
        return store
    if kind == "postgres":
        pg = PostgresStore(POSTGRES_DSN, table=f"adk_test_{unique}")
        try:
            await pg.namespaces()
        except Exception as exc:
            service_unavailable("PostgreSQL", exc)
        return pg
    raise ValueError(kind)


async def dispose(store: CheckpointStore) -> None:
    if isinstance(store, RedisStore):
        for ns in await store.namespaces():
            await store.delete(ns)
    await store.close()
    if isinstance(store, PostgresStore):  # a connection of its own: the store is closed
        import psycopg

        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True) as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {store.table}")


StoreFactory = Callable[[], AsyncIterator[CheckpointStore]]


# Fixtures for a test module that runs each test on every store (and, where the driver allows,
# both anyio backends); a module imports the three ``*_fixture`` functions (pytest finds them
# in its namespace) and asks for ``store``.


@pytest.fixture(name="kind_and_backend", params=STORE_BACKENDS)
def kind_and_backend_fixture(request: pytest.FixtureRequest) -> tuple[str, str]:
    param: tuple[str, str] = request.param
    return param


@pytest.fixture(name="anyio_backend")
def anyio_backend_fixture(kind_and_backend: tuple[str, str]) -> str:
    return kind_and_backend[1]


@pytest.fixture(name="store")
async def store_fixture(
    kind_and_backend: tuple[str, str], tmp_path: Path
) -> AsyncIterator[CheckpointStore]:
    opened = await open_test_store(kind_and_backend[0], tmp_path)
    try:
        yield opened
    finally:
        await dispose(opened)
