"""A listener whose store goes away: it falls back to polling, subscribes again, loses nothing.

Real servers only: a private redis-server that the test kills and restarts on
the same port, and the shared PostgreSQL whose listening connection the test
terminates (``pg_terminate_backend``), as tests/state/test_store_unavailable.py does.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import anyio
import pytest

from adk import PostgresStore, RedisStore
from adk.state.signals import SignalListener, send_signal
from adk.state.stores.base import StoreUnavailable
from tests.runner.stores import POSTGRES_DSN, dispose, service_unavailable
from tests.state.servers import private_redis

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # redis-py and psycopg: asyncio only


async def _admin(url: str, *command: str) -> object:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        return await client.execute_command(*command)
    finally:
        await client.aclose()


async def _send_later(store: RedisStore | PostgresStore, *kinds: str) -> None:
    for kind in kinds:
        await anyio.sleep(0.3)
        await send_signal(store, "r", kind)


async def test_redis_subscription_killed_while_listening_recovers(tmp_path: Path) -> None:
    with private_redis(tmp_path) as server:
        store = RedisStore(server.url, connect_timeout=1.0, socket_timeout=1.0)
        try:
            with anyio.fail_after(20):
                async with SignalListener(store, "r", poll=30) as listener:
                    assert listener.subscribed
                    async with anyio.create_task_group() as group:
                        group.start_soon(_send_later, store, "pause")
                        assert (await listener.next()).kind == "pause"
                    killed = await _admin(server.url, "CLIENT", "KILL", "TYPE", "pubsub")
                    assert killed == 1
                    # With a 30 s poll, these arrive in time only through a new subscription.
                    async with anyio.create_task_group() as group:
                        group.start_soon(_send_later, store, "resume", "cancel")
                        got = [await listener.next(), await listener.next()]
                    assert listener.subscribed
            assert [(s.seq, s.kind) for s in got] == [(2, "resume"), (3, "cancel")]
        finally:
            await store.close()


async def test_redis_server_killed_while_listening_recovers(tmp_path: Path) -> None:
    """The server dies and comes back (with its data): the listener polls, then subscribes again."""
    with private_redis(tmp_path) as server:
        store = RedisStore(server.url, connect_timeout=1.0, socket_timeout=1.0)
        try:
            await send_signal(store, "r", "pause")
            await _admin(server.url, "SAVE")  # the restarted server loads this snapshot
            with anyio.fail_after(30):
                async with SignalListener(store, "r", poll=30) as listener:
                    assert (await listener.next()).kind == "pause"

                    async def restart_and_send() -> None:
                        await anyio.sleep(0.3)  # the listener waits on its subscription
                        server.kill()
                        await anyio.sleep(1.0)  # it can neither read the log nor subscribe
                        with pytest.raises(StoreUnavailable):
                            await send_signal(store, "r", "resume")
                        server.start()  # the same port, the saved data
                        await send_signal(store, "r", "resume")
                        await anyio.sleep(0.3)
                        await send_signal(store, "r", "cancel")

                    async with anyio.create_task_group() as group:
                        group.start_soon(restart_and_send)
                        got = [await listener.next(), await listener.next()]
                    # With a 30 s poll, this one arrives in time only through a new subscription.
                    async with anyio.create_task_group() as group:
                        group.start_soon(_send_later, store, "retry")
                        got.append(await listener.next())
                    assert listener.subscribed
            assert [(s.seq, s.kind) for s in got] == [(2, "resume"), (3, "cancel"), (4, "retry")]
        finally:
            await store.close()


async def _postgres_store() -> PostgresStore:
    application = f"adk_sig_{uuid.uuid4().hex[:8]}"
    dsn = f"{POSTGRES_DSN}{'&' if '?' in POSTGRES_DSN else '?'}application_name={application}"
    store = PostgresStore(dsn, table=f"adk_test_{uuid.uuid4().hex[:10]}", pool_size=2)
    try:
        await store.namespaces()
    except StoreUnavailable as exc:
        await store.close()
        service_unavailable("PostgreSQL", exc)
    return store


async def _terminate(application: str) -> int:
    import psycopg

    async with await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True) as admin:
        cursor = await admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = %s AND query ILIKE 'LISTEN%%'",
            (application,),
        )
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def test_postgres_listen_connection_killed_while_listening_recovers() -> None:
    pytest.importorskip("psycopg")
    store = await _postgres_store()
    assert store.dsn is not None
    application = store.dsn.rsplit("application_name=", 1)[1]
    try:
        with anyio.fail_after(30):
            async with SignalListener(store, "r", poll=30) as listener:
                assert listener.subscribed
                assert await _terminate(application) == 1  # the listening connection only
                # With a 30 s poll, this arrives in time only if the listener subscribed again
                # (or read the log after losing its subscription).
                async with anyio.create_task_group() as group:

                    async def send_twice() -> None:
                        await anyio.sleep(0.5)
                        await send_signal(store, "r", "pause")
                        await anyio.sleep(0.5)
                        await send_signal(store, "r", "resume")

                    group.start_soon(send_twice)
                    first = await listener.next()
                    second = await listener.next()
                assert listener.subscribed
        assert [(first.seq, first.kind), (second.seq, second.kind)] == [(1, "pause"), (2, "resume")]
    finally:
        await dispose(store)
