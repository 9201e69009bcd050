"""The signal log on every store: ordered, never lost, resumable, typed errors for bad records.

Real Redis and PostgreSQL on loopback (tests/runner/stores.py skips them when
the servers are down, and fails under ADK_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import anyio
import pytest

from adk import InMemoryStore, PostgresStore, RedisStore, SQLiteStore
from adk.errors import ArgumentTypeError, ConfigurationError
from adk.state.serde import CheckpointCorrupted, dumps
from adk.state.signals import (
    Signal,
    SignalListener,
    read_signals,
    record_name,
    send_signal,
)
from adk.state.stores.base import CheckpointStore, StoreUnavailable
from tests.runner.stores import (
    POSTGRES_DSN,
    STORE_BACKENDS,
    anyio_backend_fixture,  # noqa: F401 - pytest fixture
    kind_and_backend_fixture,  # noqa: F401 - pytest fixture
    store_fixture,  # noqa: F401 - pytest fixture
)

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]
RUN = "run-1"
PUB_SUB_STORES = ("redis", "postgres")
"""The stores that notify listeners (the others' listeners poll)."""


async def test_concurrent_senders_all_land_in_one_order(store: CheckpointStore) -> None:
    """200 signals from 20 tasks at once: seq 1..200, none lost, each task's own order kept."""
    sent: dict[int, list[int]] = {task: [] for task in range(20)}

    async def sender(task: int) -> None:
        for i in range(10):
            signal = await send_signal(store, RUN, "feedback", {"text": f"{task}:{i}"})
            sent[task].append(signal.seq)

    async with anyio.create_task_group() as group:
        for task in range(20):
            group.start_soon(sender, task)
    logged = await read_signals(store, RUN)
    assert [s.seq for s in logged] == list(range(1, 201))
    texts = [s.payload["text"] for s in logged]
    assert sorted(texts) == sorted(f"{t}:{i}" for t in range(20) for i in range(10))
    for task, seqs in sent.items():
        assert seqs == sorted(seqs), task  # a task's signals are logged in the order it sent
        mine = [s.payload["text"] for s in logged if s.payload["text"].startswith(f"{task}:")]
        assert mine == [f"{task}:{i}" for i in range(10)]
    assert {s.seq: s.payload["text"] for s in logged} == {
        seq: f"{task}:{i}" for task, seqs in sent.items() for i, seq in enumerate(seqs)
    }


async def test_a_listener_gets_every_signal_in_order_while_senders_race(
    store: CheckpointStore,
) -> None:
    got: list[Signal] = []
    with anyio.fail_after(60):
        async with (
            SignalListener(store, RUN, poll=0.01) as listener,
            anyio.create_task_group() as group,
        ):
            for task in range(5):
                for i in range(8):
                    payload = {"text": f"{task}:{i}"}
                    group.start_soon(send_signal, store, RUN, "feedback", payload)
            while len(got) < 40:
                got.append(await listener.next())
    assert [s.seq for s in got] == list(range(1, 41))
    assert got == await read_signals(store, RUN)


async def test_listener_resumes_after_the_last_signal_it_handled(store: CheckpointStore) -> None:
    for kind in ("pause", "feedback", "resume", "cancel"):
        payload = {"text": "shorter answers"} if kind == "feedback" else None
        await send_signal(store, RUN, kind, payload)
    with anyio.fail_after(30):
        async with SignalListener(store, RUN, poll=0.01) as listener:
            first = [await listener.next(), await listener.next()]
        assert [s.kind for s in first] == ["pause", "feedback"]
        assert first[1].payload == {"text": "shorter answers"}
        assert listener.last_seq == 2
        async with SignalListener(store, RUN, after_seq=listener.last_seq, poll=0.01) as again:
            rest = [await again.next(), await again.next()]
    assert [(s.seq, s.kind) for s in rest] == [(3, "resume"), (4, "cancel")]
    assert [s.kind for s in await read_signals(store, RUN, after_seq=3)] == ["cancel"]
    assert await read_signals(store, "another-run") == []


async def test_signals_of_runs_are_kept_apart(store: CheckpointStore) -> None:
    await send_signal(store, "a", "cancel")
    await send_signal(store, "b", "pause")
    await send_signal(store, "b", "resume")
    assert [(s.seq, s.kind) for s in await read_signals(store, "a")] == [(1, "cancel")]
    assert [(s.seq, s.kind) for s in await read_signals(store, "b")] == [
        (1, "pause"),
        (2, "resume"),
    ]


async def test_signal_records_sit_beside_the_runs_records(store: CheckpointStore) -> None:
    await store.put(f"run:{RUN}", "meta", b"m")
    await store.put(f"run:{RUN}", "j:000001", b"j")
    signal = await send_signal(store, RUN, "approve", {"interrupt_id": "i-1", "reason": "fine"})
    assert (signal.kind, signal.payload, signal.seq) == (
        "approve",
        {"interrupt_id": "i-1", "reason": "fine"},
        1,
    )
    names = [name for name, _ in await store.scan(f"run:{RUN}")]
    assert names == ["j:000001", "meta", record_name(1)]
    assert record_name(1) == "sig:0000000001"
    await store.delete(f"run:{RUN}")  # deleting a run deletes its signals: a reused id starts at 1
    assert (await send_signal(store, RUN, "cancel")).seq == 1


async def test_a_hint_from_a_deleted_log_never_leaves_a_gap(store: CheckpointStore) -> None:
    for _ in range(5):
        await send_signal(store, RUN, "pause")
    await store.delete(f"run:{RUN}")
    await send_signal(store, "other", "pause")
    assert (await send_signal(store, RUN, "resume")).seq == 1  # not 6: the hint is checked


async def test_a_ttl_renews_the_run_and_never_shortens_it(store: CheckpointStore) -> None:
    await store.put(f"run:{RUN}", "meta", b"m", ttl=0.5)
    await send_signal(store, RUN, "cancel", ttl=3600)  # renews the whole namespace
    await anyio.sleep(1.0)
    assert await store.get(f"run:{RUN}", "meta") == b"m"
    assert [s.kind for s in await read_signals(store, RUN)] == ["cancel"]
    await store.put(f"run:{RUN}", "head", b"h", ttl=3600)
    await send_signal(store, RUN, "pause")  # no ttl: the run keeps its own
    assert await store.get(f"run:{RUN}", "head") == b"h"


@pytest.mark.parametrize(
    "record",
    [
        b"not a record",
        dumps(["a", "list"]),
        dumps({"kind": "explode", "payload": {}, "seq": 1, "sent_at": 0.0}),
        dumps({"kind": "cancel", "payload": [], "seq": 1, "sent_at": 0.0}),
        dumps({"kind": "cancel", "payload": {}, "seq": 7, "sent_at": 0.0}),
        dumps({"kind": "cancel", "payload": {}, "seq": 1}),
        dumps({"kind": "feedback", "payload": {"text": 3}, "seq": 1, "sent_at": 0.0}),
        dumps({"kind": "approve", "payload": {}, "seq": 1, "sent_at": 0.0}),
    ],
    ids=["garbage", "list", "kind", "payload", "seq", "sent_at", "text", "interrupt_id"],
)
async def test_a_corrupted_or_crafted_record_is_a_typed_error(
    store: CheckpointStore, record: bytes
) -> None:
    await store.put(f"run:{RUN}", record_name(1), record)
    with pytest.raises(CheckpointCorrupted) as caught:
        await read_signals(store, RUN)
    assert "sig:0000000001" in str(caught.value) and RUN in str(caught.value)
    with anyio.fail_after(30):
        async with SignalListener(store, RUN, poll=0.01) as listener:
            with pytest.raises(CheckpointCorrupted):
                await listener.next()
    # A sender is not stopped by a damaged record: it appends after it.
    assert (await send_signal(store, RUN, "cancel")).seq == 2


async def test_a_record_with_a_bad_name_is_a_typed_error(store: CheckpointStore) -> None:
    await store.put(f"run:{RUN}", "sig:12", dumps({}))
    with pytest.raises(CheckpointCorrupted, match="sig:12"):
        await read_signals(store, RUN)


async def test_bad_arguments_are_clear_errors(store: CheckpointStore) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown signal kind 'stop'.*cancel, pause"):
        await send_signal(store, RUN, "stop")
    with pytest.raises(ArgumentTypeError, match="kind must be a str"):
        await send_signal(store, RUN, 3)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="run_id must be a str"):
        await send_signal(store, None, "cancel")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="run_id must not be empty"):
        await send_signal(store, "", "cancel")
    with pytest.raises(ConfigurationError, match=r"needs payload\['interrupt_id'\]"):
        await send_signal(store, RUN, "approve", {})
    with pytest.raises(
        ConfigurationError, match=r"'cancel' signal's payload takes nothing, got 'x'"
    ):
        await send_signal(store, RUN, "cancel", {"x": 1})
    with pytest.raises(ArgumentTypeError, match=r"payload\['text'\] must be a str, got int"):
        await send_signal(store, RUN, "feedback", {"text": 5})
    with pytest.raises(ArgumentTypeError, match="payload must be a dict"):
        await send_signal(store, RUN, "feedback", "hello")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="at most"):
        await send_signal(store, RUN, "feedback", {"text": "x" * 100_000})
    with pytest.raises(ConfigurationError, match="ttl must be > 0"):
        await send_signal(store, RUN, "cancel", ttl=0)
    with pytest.raises(ArgumentTypeError, match="store must be a CheckpointStore"):
        await send_signal("redis://", RUN, "cancel")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="after_seq must be >= 0"):
        SignalListener(store, RUN, after_seq=-1)
    with pytest.raises(ArgumentTypeError, match="after_seq must be an int"):
        await read_signals(store, RUN, after_seq="3")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="poll must be > 0"):
        SignalListener(store, RUN, poll=0)
    with pytest.raises(ConfigurationError, match="async with"):
        await SignalListener(store, RUN).next()
    assert await read_signals(store, RUN) == []  # nothing was logged by a refused call


@pytest.mark.parametrize(
    "kind_and_backend",
    [pair for pair in STORE_BACKENDS if pair.values[0][0] in PUB_SUB_STORES],
    indirect=True,
)
async def test_pub_sub_wakes_a_listener_without_waiting_for_its_poll(
    store: CheckpointStore,
) -> None:
    """With a 30 s poll, only a notification can deliver the signal within the test's timeout."""
    assert hasattr(store, "subscribe")
    with anyio.fail_after(10):
        async with SignalListener(store, RUN, poll=30) as listener:
            assert listener.subscribed
            async with anyio.create_task_group() as group:
                group.start_soon(_send_later, store, RUN)
                first = await listener.next()
                second = await listener.next()
    assert [(first.seq, first.kind), (second.seq, second.kind)] == [(1, "pause"), (2, "cancel")]


async def _send_later(store: CheckpointStore, run_id: str) -> None:
    await anyio.sleep(0.3)  # the listener is waiting on its subscription by now
    await send_signal(store, run_id, "pause")
    await anyio.sleep(0.3)
    await send_signal(store, run_id, "cancel")


async def test_many_listeners_of_one_store_do_not_take_its_pool(store: CheckpointStore) -> None:
    """Subscriptions use connections of their own: 12 listeners, more than a pool of 10."""
    async with AsyncExitStack() as stack:
        listeners = [
            await stack.enter_async_context(SignalListener(store, f"r{i}", poll=30))
            for i in range(12)
        ]
        with anyio.fail_after(8):  # below the pool timeout: a starved pool fails here
            for i in range(12):
                await send_signal(store, f"r{i}", "feedback", {"text": str(i)})
            got = [await listener.next() for listener in listeners]
    assert [s.payload["text"] for s in got] == [str(i) for i in range(12)]


class _NotifyFails(InMemoryStore):
    """An in-memory store whose notifications always fail (as if its server dropped them)."""

    async def notify(self, channel: str, message: str) -> None:
        raise StoreUnavailable("memory", "here", "notify", "dropped")


@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_a_failed_notification_loses_nothing(anyio_backend: str) -> None:
    store = _NotifyFails()
    signal = await send_signal(store, RUN, "cancel")
    assert signal.seq == 1
    with anyio.fail_after(10):
        async with SignalListener(store, RUN, poll=0.01) as listener:
            assert (await listener.next()) == signal


def _cross_process_store(store: CheckpointStore) -> tuple[str, str, str] | None:
    if isinstance(store, SQLiteStore):
        return ("sqlite", store.path, "-")
    if isinstance(store, RedisStore):
        return ("redis", store.url, store.key_prefix)
    if isinstance(store, PostgresStore):
        return ("postgres", POSTGRES_DSN, store.table)
    return None


@pytest.mark.parametrize(
    "kind_and_backend",
    [pair for pair in STORE_BACKENDS if pair.values[0][0] != "memory"],  # memory: one process only
    indirect=True,
)
async def test_two_processes_sending_at_once_lose_nothing(store: CheckpointStore) -> None:
    where = _cross_process_store(store)
    assert where is not None
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "tests.signals.sender", *where, RUN, "100"]
    children = [
        subprocess.Popen(  # noqa: ASYNC220 - started once, waited for after the listener
            [*command, tag], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for tag in ("p", "q")
    ]
    got: list[Signal] = []
    try:
        with anyio.fail_after(120):
            async with SignalListener(store, RUN, poll=0.05) as listener:
                while len(got) < 200:
                    got.append(await listener.next())
    finally:
        outputs = [child.communicate(timeout=120)[0] for child in children]
    assert [child.returncode for child in children] == [0, 0], outputs
    assert [s.seq for s in got] == list(range(1, 201))
    for tag in ("p", "q"):
        mine = [s.payload["text"] for s in got if s.payload["text"].startswith(f"{tag}:")]
        assert mine == [f"{tag}:{i}" for i in range(100)]
    assert got == await read_signals(store, RUN)
