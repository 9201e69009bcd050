"""Store options are checked when the store is built, and drivers load only when used."""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from adk import PostgresStore, RedisStore, SQLiteStore
from adk.errors import AdkError, ConfigurationError
from adk.state.stores import StoreUnavailable as ExportedStoreUnavailable
from adk.state.stores.base import StoreUnavailable, failure_reason, redact_address
from tests.runner.stores import POSTGRES_DSN, dispose, service_unavailable

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def test_importing_adk_and_its_stores_loads_no_driver() -> None:
    code = (
        "import sys, adk\n"
        "from adk import RedisStore, PostgresStore, SQLiteStore, InMemoryStore\n"
        "from adk.state.stores.base import StoreUnavailable\n"
        "PostgresStore('postgresql://nobody@127.0.0.1:1/x')  # lazy: connects on first use\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('redis', 'psycopg', 'psycopg_pool'))\n"
        "print(loaded)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"pool_size": 0}, "pool_size"),
        ({"pool_size": 2.5}, "pool_size"),
        ({"pool_timeout": 0}, "pool_timeout"),
        ({"connect_timeout": -1}, "connect_timeout"),
        ({"table": "runs; DROP TABLE x"}, "table"),
        ({"table": "1runs"}, "table"),
    ],
)
def test_postgres_store_rejects_bad_options_naming_them(
    options: dict[str, Any], argument: str
) -> None:
    with pytest.raises(ConfigurationError, match=argument):
        PostgresStore(POSTGRES_DSN, **options)


def test_postgres_store_needs_a_dsn_or_a_pool() -> None:
    with pytest.raises(ConfigurationError, match="dsn or a pool"):
        PostgresStore()
    with pytest.raises(ConfigurationError, match="dsn or a pool"):
        PostgresStore(POSTGRES_DSN, pool=object())


@pytest.mark.parametrize(
    ("options", "argument"),
    [
        ({"max_connections": 0}, "max_connections"),
        ({"max_connections": True}, "max_connections"),
        ({"pool_timeout": 0}, "pool_timeout"),
        ({"connect_timeout": "5"}, "connect_timeout"),
        ({"socket_timeout": -2}, "socket_timeout"),
    ],
)
def test_redis_store_rejects_bad_options_naming_them(
    options: dict[str, Any], argument: str
) -> None:
    pytest.importorskip("redis")
    with pytest.raises(ConfigurationError, match=argument):
        RedisStore(**options)


def test_sqlite_store_rejects_a_negative_timeout(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        SQLiteStore(tmp_path / "runs.db", timeout=-1)


def test_store_unavailable_is_an_adk_error_that_survives_pickling() -> None:
    error = StoreUnavailable("redis", "redis://h:6379/0", "put_many", "ConnectionError: refused")
    assert isinstance(error, AdkError)
    assert ExportedStoreUnavailable is StoreUnavailable
    assert str(error) == (
        "redis checkpoint store at redis://h:6379/0 is unavailable (put_many):"
        " ConnectionError: refused"
    )
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.kind, copy.address, copy.operation, copy.reason) == (
        "redis",
        "redis://h:6379/0",
        "put_many",
        "ConnectionError: refused",
    )


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        ("redis://:pw@127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user:pw@[::1]:6379/2", "redis://user@[::1]:6379/2"),
        (
            "postgresql://app:pw@db:5432/x?sslmode=require",
            "postgresql://app@db:5432/x?sslmode=require",
        ),
        (
            "postgresql://app@db/x?password=pw&connect_timeout=3",
            "postgresql://app@db/x?connect_timeout=3",
        ),
        ("host=db password='p w\\' q' user=app", "host=db user=app"),
        ("unix:///var/run/redis.sock?db=1", "unix:///var/run/redis.sock?db=1"),
        ("/var/lib/runs.db", "/var/lib/runs.db"),
    ],
)
def test_addresses_are_named_without_their_password(address: str, shown: str) -> None:
    assert redact_address(address) == shown


def test_failure_reasons_are_one_line_with_secrets_masked() -> None:
    error = OSError("connect to\n  db failed:  password pw was refused")
    assert failure_reason(error, "pw") == "OSError: connect to db failed: password *** was refused"


async def test_postgres_store_reopens_after_close() -> None:
    store = PostgresStore(POSTGRES_DSN, table=f"adk_test_{uuid.uuid4().hex[:10]}", pool_size=2)
    try:
        try:
            await store.put("run:a", "meta", b"1")
        except StoreUnavailable as exc:
            service_unavailable("PostgreSQL", exc)
        await store.close()
        assert await store.get("run:a", "meta") == b"1"  # a new pool, opened on demand
        await store.close()
        await store.close()  # closing twice is harmless
    finally:
        await dispose(store)
