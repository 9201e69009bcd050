"""Damaged and crafted session records: refused by name, never half-loaded (SQLite and memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from adk import InMemoryStore, Message, SQLiteStore
from adk.events import HistoryEntry
from adk.sessions import (
    SESSION_FORMAT,
    SessionCorrupted,
    SessionError,
    SessionService,
    SessionVersionError,
)
from adk.sessions.records import Batch, batch_name, segment_name, session_namespace
from adk.state.serde import dumps, loads
from adk.state.stores.base import CheckpointStore
from tests.sessions.conftest import pairs, take_turn, turn_entries

pytestmark = pytest.mark.anyio

NAMESPACE = session_namespace("adk", "s1")


@pytest.fixture(params=["sqlite", "memory"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CheckpointStore]:
    opened: CheckpointStore = (
        SQLiteStore(tmp_path / "sessions.db") if request.param == "sqlite" else InMemoryStore()
    )
    try:
        yield opened
    finally:
        await opened.close()


async def stored_session(store: CheckpointStore, turns: int, compact_every: int = 32) -> None:
    """Session ``s1`` of user ``u1`` with ``turns`` turns, each setting value ``n``."""
    service = SessionService(store, compact_every=compact_every)
    for number in range(1, turns + 1):
        await take_turn(
            service, "s1", "u1", turn_entries(f"turn {number}"), set_values={"n": number}
        )


async def snapshot(store: CheckpointStore) -> dict[str, list[tuple[str, bytes]]]:
    return {ns: await store.scan(ns) for ns in await store.namespaces()}


async def assert_refused(
    store: CheckpointStore, error: type[SessionError], *fragments: str
) -> SessionError:
    """Every way of reading the session raises ``error`` (message with ``fragments``); no writes."""
    before = await snapshot(store)
    caught: list[SessionError] = []
    fresh = SessionService(store)
    for attempt in range(2):  # the same again: nothing half-loaded was kept
        with pytest.raises(error) as by_get:
            await fresh.get_session("s1")
        with pytest.raises(error) as by_turn:
            await fresh.begin_turn("s1", "u1", f"run-x{attempt}")
        caught += [by_get.value, by_turn.value]
    with pytest.raises(error):
        await SessionService(store).begin_turn("s1", None, "run-y")
    for exc in caught:
        message = str(exc)
        assert "'s1'" in message, message
        for fragment in fragments:
            assert fragment in message, message
    # The refused turns wrote nothing and let the session go (no lease left behind).
    assert await snapshot(store) == before
    return caught[0]


async def rewrite(
    store: CheckpointStore, name: str, change: Callable[[dict[str, Any]], None]
) -> None:
    """Decode record ``name``, change its fields, write it back (a well-formed record)."""
    data = await store.get(NAMESPACE, name)
    assert data is not None, name
    fields = loads(data)
    change(fields)
    await store.put(NAMESPACE, name, dumps(fields))


# -- versions -------------------------------------------------------------------------------


@pytest.mark.parametrize("record", ["head", batch_name(2)])
async def test_a_record_of_a_newer_format_is_refused_naming_both_versions(
    store: CheckpointStore, record: str
) -> None:
    await stored_session(store, 2)
    cached = SessionService(store)
    await cached.get_session("s1")
    newer = SESSION_FORMAT + 1
    await rewrite(store, record, lambda fields: fields.update(v=newer))

    exc = await assert_refused(store, SessionVersionError, record)
    message = str(exc)
    assert f"version {newer}" in message and f"{SESSION_FORMAT}" in message.split(str(newer), 1)[1]
    if record == "head":  # a service that had the session cached sees the new head too
        with pytest.raises(SessionVersionError):
            await cached.get_session("s1")


# -- damaged bytes --------------------------------------------------------------------------


async def compacted_session(store: CheckpointStore) -> None:
    """Batches 1-4 in segment g:4, batch 5 in the tail."""
    await stored_session(store, 5, compact_every=4)
    assert [name for name, _ in await store.scan(NAMESPACE)] == [
        segment_name(4),
        "head",
        batch_name(5),
        "values",
    ]


@pytest.mark.parametrize("record", [batch_name(5), segment_name(4), "values"])
@pytest.mark.parametrize("damage", ["truncated", "flipped", "header", "empty"])
async def test_a_damaged_record_is_refused_naming_the_session_and_record(
    store: CheckpointStore, record: str, damage: str
) -> None:
    await compacted_session(store)
    data = await store.get(NAMESPACE, record)
    assert data is not None
    if damage == "truncated":
        damaged = data[: len(data) * 2 // 3]
    elif damage == "flipped":
        position = 9 + (len(data) - 9) // 2  # in the payload
        damaged = data[:position] + bytes([data[position] ^ 0x10]) + data[position + 1 :]
    elif damage == "header":
        damaged = b"XDKC" + data[4:]
    else:
        damaged = b""
    await store.put(NAMESPACE, record, damaged)
    await assert_refused(store, SessionCorrupted, record)


async def test_every_single_bit_flip_of_a_batch_is_refused(store: CheckpointStore) -> None:
    await stored_session(store, 2)
    name = batch_name(2)
    data = await store.get(NAMESPACE, name)
    assert data is not None
    for position in range(len(data)):
        for bit in (0x01, 0x80):
            await store.put(
                NAMESPACE,
                name,
                data[:position] + bytes([data[position] ^ bit]) + data[position + 1 :],
            )
            with pytest.raises(SessionError) as caught:  # corrupted; byte 4: the format version
                await SessionService(store).get_session("s1")
            expected = (
                (SessionCorrupted,) if position != 4 else (SessionCorrupted, SessionVersionError)
            )
            assert isinstance(caught.value, expected), (position, bit, caught.value)
            assert name in str(caught.value)
    await store.put(NAMESPACE, name, data)  # restored: it reads again
    assert (await SessionService(store).get_session("s1")).turns == 2


# -- missing records ------------------------------------------------------------------------


async def test_a_missing_batch_in_the_middle_is_refused(store: CheckpointStore) -> None:
    await stored_session(store, 4)
    await store.delete(NAMESPACE, batch_name(2))
    await assert_refused(store, SessionCorrupted, "batch 2 is missing", batch_name(3))


async def test_a_missing_last_batch_is_refused(store: CheckpointStore) -> None:
    """The head says 4 batches were appended: the session has lost its last turn."""
    await stored_session(store, 4)
    await store.delete(NAMESPACE, batch_name(4))
    await assert_refused(store, SessionCorrupted, "batch 4 is missing")


async def test_a_missing_segment_is_refused(store: CheckpointStore) -> None:
    await stored_session(store, 9, compact_every=4)  # g:4, g:8, t:9
    assert [n for n, _ in await store.scan(NAMESPACE, "g:")] == [segment_name(4), segment_name(8)]
    await store.delete(NAMESPACE, segment_name(4))
    await assert_refused(store, SessionCorrupted, segment_name(8))


async def test_a_missing_last_segment_is_refused(store: CheckpointStore) -> None:
    await stored_session(store, 8, compact_every=4)  # g:4, g:8 and no tail
    assert [n for n, _ in await store.scan(NAMESPACE, "t:")] == []
    await store.delete(NAMESPACE, segment_name(8))
    await assert_refused(store, SessionCorrupted, "batch 5 is missing")


async def test_a_missing_values_record_is_refused(store: CheckpointStore) -> None:
    await compacted_session(store)
    await store.delete(NAMESPACE, "values")
    await assert_refused(store, SessionCorrupted, "values")


# -- well-formed records of the wrong structure ----------------------------------------------


def _set(field: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda fields: fields.update({field: value})


def _drop(field: str) -> Callable[[dict[str, Any]], None]:
    return lambda fields: fields.pop(field)


def _author(value: Any) -> Callable[[dict[str, Any]], None]:
    def change(fields: dict[str, Any]) -> None:
        fields["entries"][1][0] = value

    return change


BAD_BATCHES = {
    "entries not a list": (_set("entries", "text"), "'entries'"),
    "entry not a pair": (_set("entries", [["helper"]]), "entry 0"),
    "author not a str": (_author(7), "entry 1 has a non-str author"),
    "message too short": (_set("entries", [[None, [1, "hi"]]]), "entry 0"),
    "role out of range": (lambda f: f["entries"][0][1].__setitem__(0, 9), "'role'"),
    "content not a str": (lambda f: f["entries"][0][1].__setitem__(1, 5), "'content'"),
    "tool call malformed": (
        lambda f: f["entries"][0][1].__setitem__(2, [["id", "name"]]),
        "'tool_calls[0]'",
    ),
    "set not a map": (_set("set", [1, 2]), "'set'"),
    "set value not encoded": (_set("set", {"n": 3}), "'set'"),
    "del not a list of str": (_set("del", [1]), "'del'"),
    "seq missing": (_drop("seq"), "'seq' is missing"),
    "seq a str": (_set("seq", "2"), "'seq'"),
    "final not a bool": (_set("final", 1), "'final'"),
    "run missing": (_drop("run"), "'run'"),
    "version missing": (_drop("v"), "'v'"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
async def test_a_batch_of_the_wrong_structure_is_refused_naming_the_field(
    store: CheckpointStore, case: str
) -> None:
    await stored_session(store, 2)
    change, fragment = BAD_BATCHES[case]
    await rewrite(store, batch_name(2), change)
    await assert_refused(store, SessionCorrupted, batch_name(2), fragment)


BAD_HEADS = {
    "user not a str": (_set("user", 1), "'user'"),
    "turns missing": (_drop("turns"), "'turns'"),
    "next a float": (_set("next", 3.0), "'next'"),
    "paused malformed": (_set("paused", ["run", "ckpt"]), "'paused'"),
    "not a map": (None, "must be a map"),
}


@pytest.mark.parametrize("case", list(BAD_HEADS))
async def test_a_head_of_the_wrong_structure_is_refused_naming_the_field(
    store: CheckpointStore, case: str
) -> None:
    await stored_session(store, 2)
    change, fragment = BAD_HEADS[case]
    if change is None:
        await store.put(NAMESPACE, "head", dumps([SESSION_FORMAT, "u1"]))
    else:
        await rewrite(store, "head", change)
    await assert_refused(store, SessionCorrupted, "head", fragment)


async def test_a_segment_of_the_wrong_structure_is_refused(store: CheckpointStore) -> None:
    await compacted_session(store)
    await rewrite(store, segment_name(4), _set("first", 2))
    await assert_refused(store, SessionCorrupted, segment_name(4), "batch 1 comes next")


# -- a writer that died after its batch, before its head ----------------------------------------


async def test_a_batch_beyond_the_head_is_picked_up_and_appended_after(
    store: CheckpointStore,
) -> None:
    await stored_session(store, 2)
    writer = SessionService(store)
    assert (await writer.get_session("s1")).turns == 2  # cached before the orphan is written
    orphan = turn_entries("orphan", tools=True)
    batch = Batch(3, orphan, changed={"n": dumps(3), "orphan": dumps(True)}, run_id="dead-run")
    assert await store.put_if_absent(NAMESPACE, batch_name(3), batch.encode())
    head = loads((await store.get(NAMESPACE, "head")) or b"")
    assert (head["next"], head["turns"]) == (3, 2)  # the head does not know of it

    before = pairs(turn_entries("turn 1") + turn_entries("turn 2"))
    loaded = await SessionService(store).get_session("s1")
    assert loaded.turns == 3
    assert pairs(loaded.history) == before + pairs(orphan)
    assert loaded.values == {"n": 3, "orphan": True}

    # The next turn, from the service that cached the session before, goes after it.
    seen = await take_turn(writer, "s1", "u1", turn_entries("turn 4"), set_values={"n": 4})
    assert seen == {"n": 3, "orphan": True}
    expected = before + pairs(orphan) + pairs(turn_entries("turn 4"))
    for reader in (writer, SessionService(store)):
        session = await reader.get_session("s1")
        assert session.turns == 4
        assert pairs(session.history) == expected
        assert session.values == {"n": 4, "orphan": True}
    assert [n for n, _ in await store.scan(NAMESPACE, "t:")] == [batch_name(i) for i in range(1, 5)]


async def test_a_batch_beyond_the_head_counts_once_through_a_compaction(
    store: CheckpointStore,
) -> None:
    await stored_session(store, 3, compact_every=4)
    orphan = [HistoryEntry(None, Message.user("orphan"))]
    await store.put_if_absent(NAMESPACE, batch_name(4), Batch(4, orphan, run_id="dead").encode())
    service = SessionService(store, compact_every=4)
    turn = await service.begin_turn("s1", "u1", "run-5")
    assert pairs(turn.prior)[-1] == pairs(orphan)[0]
    await turn.append(turn_entries("turn 5"), final=True)  # compacts batches 1-5
    await turn.release()
    assert [n for n, _ in await store.scan(NAMESPACE)] == [segment_name(5), "head", "values"]
    session = await SessionService(store).get_session("s1")
    assert session.turns == 5
    assert [e.message.content for e in session.history if e.agent_name is None] == [
        "turn 1: question",
        "turn 2: question",
        "turn 3: question",
        "orphan",
        "turn 5: question",
    ]


async def test_a_run_that_died_after_a_step_batch_resumes_without_repeating_it(
    store: CheckpointStore,
) -> None:
    """A ``durability="step"`` turn appended part of its run, then died before its head write.

    Resumed by a service that had the session in memory from before, the run
    must see what it appended (not repeat it in the history).
    """
    await stored_session(store, 2)
    service = SessionService(store)
    assert (await service.get_session("s1")).turns == 2  # in memory from before the turn
    run = turn_entries("resumed", tools=True)
    written = Batch(3, run[:2], run_id="run-R", final=False)  # the user message, the tool call
    assert await store.put_if_absent(NAMESPACE, batch_name(3), written.encode())

    turn = await service.begin_turn("s1", "u1", "run-R", resuming=True, base_seq=3)
    assert pairs(turn.prior) == pairs(turn_entries("turn 1") + turn_entries("turn 2"))
    await turn.append(run, final=True)
    await turn.release()

    expected = pairs(turn_entries("turn 1") + turn_entries("turn 2") + run)
    for reader in (service, SessionService(store)):
        session = await reader.get_session("s1")
        assert pairs(session.history) == expected
        assert session.turns == 3


async def test_batches_left_by_a_compaction_that_died_are_not_read_twice(
    store: CheckpointStore,
) -> None:
    """The segment, values and head were written; the merged batches' deletion did not finish."""
    await stored_session(store, 3, compact_every=4)
    left = {
        name: data for name, data in await store.scan(NAMESPACE, "t:") if name >= "t:0000000003"
    }
    await stored_session_turn(store, 4)  # compacts batches 1-4 into g:4
    assert await store.scan(NAMESPACE, "t:") == []
    for name, data in left.items():  # batch 3 (and 4, rebuilt) survived the dead compaction
        await store.put(NAMESPACE, name, data)
    rebuilt = Batch(4, turn_entries("turn 4"), changed={"n": dumps(4)}, run_id="run-4")
    await store.put(NAMESPACE, batch_name(4), rebuilt.encode())

    expected = [turn_entries(f"turn {n}") for n in range(1, 5)]
    session = await SessionService(store).get_session("s1")
    assert session.turns == 4 and session.values == {"n": 4}
    assert pairs(session.history) == pairs([e for turn in expected for e in turn])

    for number in range(5, 9):  # the next compaction (at batch 8) deletes them
        await stored_session_turn(store, number)
        expected.append(turn_entries(f"turn {number}"))
    assert [n for n, _ in await store.scan(NAMESPACE)] == [
        segment_name(4),
        segment_name(8),
        "head",
        "values",
    ]
    session = await SessionService(store).get_session("s1")
    assert session.turns == 8 and pairs(session.history) == pairs(
        [e for turn in expected for e in turn]
    )


async def stored_session_turn(store: CheckpointStore, number: int) -> None:
    """Turn ``number`` of session ``s1``, from a fresh service (compacting every 4 batches)."""
    await take_turn(
        SessionService(store, compact_every=4),
        "s1",
        "u1",
        turn_entries(f"turn {number}"),
        set_values={"n": number},
    )
