"""One conformance suite, the same assertions, against all four checkpoint stores."""

from __future__ import annotations

import anyio
import pytest

from adk.state.stores.base import CheckpointStore
from tests.runner.stores import (  # noqa: F401  (fixtures: every test runs on every store)
    anyio_backend_fixture,
    kind_and_backend_fixture,
    store_fixture,
)

pytestmark = pytest.mark.anyio


async def test_put_get_overwrite_and_missing(store: CheckpointStore) -> None:
    assert await store.get("run:a", "meta") is None
    await store.put("run:a", "meta", b"one")
    assert await store.get("run:a", "meta") == b"one"
    await store.put("run:a", "meta", b"two\x00\xff")
    assert await store.get("run:a", "meta") == b"two\x00\xff"
    assert await store.get("run:b", "meta") is None


async def test_scan_is_sorted_and_filtered_by_prefix(store: CheckpointStore) -> None:
    for name in ["j:0000000002", "j:0000000000", "meta", "j:0000000001", "cp:1"]:
        await store.put("run:x", name, name.encode())
    await store.put("run:y", "j:0000000000", b"other run")
    chunks = await store.scan("run:x", "j:")
    assert [name for name, _ in chunks] == ["j:0000000000", "j:0000000001", "j:0000000002"]
    assert chunks[0][1] == b"j:0000000000"
    assert [name for name, _ in await store.scan("run:x")] == sorted(
        ["j:0000000002", "j:0000000000", "meta", "j:0000000001", "cp:1"]
    )
    assert await store.scan("run:none") == []


async def test_put_if_absent_writes_once(store: CheckpointStore) -> None:
    assert await store.put_if_absent("run:c", "claim", b"first") is True
    assert await store.put_if_absent("run:c", "claim", b"second") is False
    assert await store.get("run:c", "claim") == b"first"


async def test_concurrent_put_if_absent_has_exactly_one_winner(store: CheckpointStore) -> None:
    results: list[bool] = []

    async def contender(i: int) -> None:
        results.append(await store.put_if_absent("run:race", "claim:cp", str(i).encode()))

    async with anyio.create_task_group() as group:
        for i in range(20):
            group.start_soon(contender, i)
    assert results.count(True) == 1 and len(results) == 20


async def test_delete_record_and_namespace_and_list_namespaces(store: CheckpointStore) -> None:
    await store.put("run:1", "a", b"1")
    await store.put("run:1", "b", b"2")
    await store.put("run:2", "a", b"3")
    await store.put("other", "a", b"4")
    assert await store.namespaces("run:") == ["run:1", "run:2"]
    await store.delete("run:1", "a")
    assert [n for n, _ in await store.scan("run:1")] == ["b"]
    await store.delete("run:1")
    assert await store.scan("run:1") == []
    assert await store.namespaces("run:") == ["run:2"]


async def test_ttl_expires_records(store: CheckpointStore) -> None:
    await store.put("run:t", "short", b"x", ttl=0.3)
    await store.put("run:keep", "long", b"y")
    assert await store.get("run:t", "short") == b"x"
    await anyio.sleep(0.6)
    assert await store.get("run:t", "short") is None
    assert await store.scan("run:t") == []
    assert await store.get("run:keep", "long") == b"y"
    # an expired claim no longer blocks a new one
    await store.put("run:t2", "claim", b"old", ttl=0.3)
    await anyio.sleep(0.6)
    assert await store.put_if_absent("run:t2", "claim", b"new") is True


async def test_put_many_writes_all_records_together(store: CheckpointStore) -> None:
    await store.put("run:m", "head", b"old")
    await store.put_many(
        "run:m", [("j:0000000000", b"chunk"), ("cp:000001", b"cp"), ("head", b"new")]
    )
    assert await store.scan("run:m") == [
        ("cp:000001", b"cp"),
        ("head", b"new"),
        ("j:0000000000", b"chunk"),
    ]
    await store.put_many("run:m2", [("a", b"1")], ttl=0.3)
    await anyio.sleep(0.6)
    assert await store.scan("run:m2") == []


async def test_a_write_with_ttl_renews_the_whole_namespace(store: CheckpointStore) -> None:
    await store.put("run:r", "first", b"1", ttl=0.6)
    await anyio.sleep(0.4)
    await store.put_many("run:r", [("second", b"2")], ttl=0.6)
    await anyio.sleep(0.4)  # 0.8 s after the first write, 0.4 s after the renewal
    assert [name for name, _ in await store.scan("run:r")] == ["first", "second"]
    await anyio.sleep(0.5)
    assert await store.scan("run:r") == []


async def test_a_write_never_brings_expired_records_back(store: CheckpointStore) -> None:
    # A namespace reused after it expired (a run or session id given again) must start
    # empty: renewing its expiry must not revive records a purge has not deleted yet.
    await store.put_many("run:x", [("old", b"1"), ("older", b"2")], ttl=0.2)
    await anyio.sleep(0.4)
    await store.put("run:x", "new", b"3", ttl=60)
    assert await store.put_if_absent("run:x", "claim", b"4", ttl=60)
    await store.put_many("run:x", [("newer", b"5")], ttl=60)
    assert [name for name, _ in await store.scan("run:x")] == ["claim", "new", "newer"]
    assert await store.get("run:x", "old") is None


async def test_delete_many_deletes_exactly_the_named_records(store: CheckpointStore) -> None:
    await store.put_many("run:d", [(f"t:{n}", b"x") for n in range(5)])
    await store.put("run:other", "t:1", b"y")
    delete_many = store.delete_many  # type: ignore[attr-defined]  # every built-in store has it
    await delete_many("run:d", ["t:1", "t:3", "t:missing"])
    await delete_many("run:d", [])
    assert [name for name, _ in await store.scan("run:d")] == ["t:0", "t:2", "t:4"]
    assert await store.get("run:other", "t:1") == b"y"
