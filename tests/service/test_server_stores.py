"""The service on Redis and PostgreSQL: event logs wake readers through pub/sub and NOTIFY.

Skipped when the servers are down, failed instead with ADK_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import uuid

import anyio
import pytest

from adk import PostgresStore, RedisStore
from adk.service import Service
from adk.state.stores.base import CheckpointStore
from tests.runner.stores import POSTGRES_DSN, REDIS_URL, dispose, service_unavailable
from tests.service import apps
from tests.service.server import LiveServer, sse, wait_status


def _store(kind: str, unique: str) -> CheckpointStore:
    if kind == "redis":
        return RedisStore(REDIS_URL, key_prefix=f"adktest:{unique}:")
    return PostgresStore(POSTGRES_DSN, table=f"adk_test_{unique}")


def _reachable(kind: str, unique: str) -> None:
    async def probe() -> None:
        store = _store(kind, unique)
        try:
            await store.namespaces()
        finally:
            await store.close()

    try:
        anyio.run(probe)
    except Exception as exc:
        service_unavailable(kind, exc)


@pytest.mark.parametrize("kind", ["redis", "postgres"])
def test_an_approval_flow_on_a_shared_store(kind: str) -> None:
    unique = uuid.uuid4().hex[:10]
    _reachable(kind, unique)
    live = LiveServer(Service(apps.agents(), store=_store(kind, unique)))
    try:
        with live.client() as client:
            run_id = client.post("/runs", json={"agent": "support", "input": "refund"}).json()["id"]
            before = sse(client, run_id)
            view = client.get(f"/runs/{run_id}").json()
            answer = {"answers": {view["interrupts"][0]["id"]: True}}
            client.post(f"/runs/{run_id}/answers", json=answer)
            after = sse(client, run_id, **{"Last-Event-ID": str(before[-1]["id"])})
            done = wait_status(client, run_id, "completed")
    finally:
        live.stop()
        anyio.run(dispose, _store(kind, unique))
    ids = [m["id"] for m in before + after]
    assert ids == list(range(1, len(ids) + 1))
    assert done["text"] == "Done: refunded 30"
