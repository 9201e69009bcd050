"""SessionService conformance: the same behaviour on memory, SQLite, Redis and PostgreSQL."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from adk.sessions import (
    PausedTurn,
    SessionError,
    SessionInfo,
    SessionNotFound,
    SessionPaused,
    SessionService,
)
from adk.sessions.records import session_namespace, user_index_namespace
from adk.state.stores.base import CheckpointStore
from tests.runner.stores import POSTGRES_DSN
from tests.sessions.conftest import kind_of, pairs, records_of, take_turn, turn_entries

pytestmark = pytest.mark.anyio


# -- creation and history ---------------------------------------------------------------


async def test_a_session_is_created_by_its_first_append(store: CheckpointStore) -> None:
    service = SessionService(store)
    with pytest.raises(SessionNotFound):
        await service.get_session("s1")
    assert await service.list_sessions("u1") == []

    # A turn that appends nothing leaves no session behind.
    turn = await service.begin_turn("s1", "u1", "run-empty")
    assert turn.prior == []
    await turn.release()
    with pytest.raises(SessionNotFound):
        await service.get_session("s1")
    assert await service.list_sessions("u1") == []
    assert await records_of(store, "adk", "s1") == {}

    before = time.time()
    await take_turn(service, "s1", "u1", turn_entries("one"))
    after = time.time()
    session = await service.get_session("s1")
    assert session.id == "s1" and session.app == "adk" and session.user_id == "u1"
    assert session.turns == 1
    assert before <= session.created <= session.updated <= after
    assert pairs(session.history) == pairs(turn_entries("one"))
    assert [info.id for info in await service.list_sessions("u1")] == ["s1"]


async def test_history_round_trips_authors_roles_content_and_tool_calls(
    store: CheckpointStore,
) -> None:
    writer = SessionService(store)
    first, second = turn_entries("first", tools=True), turn_entries("second", tools=True)
    await take_turn(writer, "s1", "u1", first)
    await take_turn(writer, "s1", "u1", second)

    expected = pairs(first + second)
    for service in (writer, SessionService(store)):  # cached, and read from the store
        history = (await service.get_session("s1")).history
        assert pairs(history) == expected
        assert [e.agent_name for e in history] == [None, "helper", "helper", "helper"] * 2
        assert [e.message.role for e in history] == ["user", "assistant", "tool", "assistant"] * 2
        call = history[1].message.tool_calls[0]
        assert (call.id, call.name, call.arguments) == ("call-first", "lookup", '{"q": "first"}')
        assert history[2].message.tool_call_id == "call-first"
        assert history[2].message.name == "lookup"
        usage = history[1].message.usage
        assert usage is not None and (usage.prompt_tokens, usage.cached_tokens) == (11, 2)

    # The next turn's prior history is the same, from a fresh service too.
    turn = await SessionService(store).begin_turn("s1", "u1", "run-3")
    assert pairs(turn.prior) == expected
    await turn.release()


async def test_turns_created_and_updated(store: CheckpointStore) -> None:
    service = SessionService(store)
    await take_turn(service, "s1", "u1", turn_entries("one"))
    one = await service.get_session("s1")
    await take_turn(service, "s1", "u1", turn_entries("two"))
    await take_turn(service, "s1", "u1", turn_entries("three"))
    three = await SessionService(store).get_session("s1")
    assert (one.turns, three.turns) == (1, 3)
    assert three.created == one.created
    assert three.updated >= one.updated >= one.created
    [info] = await service.list_sessions("u1")
    assert (info.turns, info.created, info.updated) == (3, three.created, three.updated)


# -- values ---------------------------------------------------------------------------------

VALUES: dict[str, Any] = {
    "name": "Zoë",
    "count": 3,
    "ratio": 0.25,
    "flags": [True, False, None],
    "nested": {"a": [1, 2, {"b": "c"}], "empty": {}},
    "blob": b"\x00\xff",
}


async def test_session_values_round_trip_and_deletions(store: CheckpointStore) -> None:
    service = SessionService(store)
    seen = await take_turn(service, "s1", "u1", turn_entries("one"), set_values=VALUES)
    assert seen == {}
    assert (await service.get_session("s1")).values == VALUES
    assert (await SessionService(store).get_session("s1")).values == VALUES

    # The next turn starts with them; it deletes one, changes one in place, adds one.
    turn = await SessionService(store).begin_turn("s1", "u1", "run-2")
    values = turn.values(None)
    assert values == VALUES
    del values["ratio"]
    values["flags"].append("more")
    values["added"] = "new"
    await turn.append(turn_entries("two"), final=True, values=values)
    await turn.release()

    expected = {k: v for k, v in VALUES.items() if k != "ratio"}
    expected.update(flags=[True, False, None, "more"], added="new")
    for reader in (service, SessionService(store)):
        assert (await reader.get_session("s1")).values == expected

    # A turn that passes no values changes none.
    turn = await service.begin_turn("s1", "u1", "run-3")
    turn.values(None)
    await turn.append(turn_entries("three"), final=True)
    await turn.release()
    assert (await SessionService(store).get_session("s1")).values == expected


async def test_user_values_are_shared_by_the_users_sessions_only(store: CheckpointStore) -> None:
    service = SessionService(store)
    await take_turn(service, "s1", "u1", turn_entries("one"), set_values={"user:lang": "fr"})

    # Another session of u1 sees it, from another service too; u2's sessions do not.
    seen = await take_turn(SessionService(store), "s2", "u1", turn_entries("two"))
    assert seen == {"user:lang": "fr"}
    assert await take_turn(service, "s3", "u2", turn_entries("three")) == {}
    s2 = await service.get_session("s2")
    assert s2.user_values == {"user:lang": "fr"} and s2.values == {}
    assert (await service.get_session("s3")).user_values == {}

    # Deleted from one of u1's sessions: gone from the other.
    await take_turn(service, "s2", "u1", turn_entries("four"), remove=["user:lang"])
    assert (await SessionService(store).get_session("s1")).user_values == {}
    assert await take_turn(service, "s1", "u1", turn_entries("five")) == {}


async def test_app_values_are_shared_by_the_apps_sessions_only(store: CheckpointStore) -> None:
    one, other = SessionService(store, app="one"), SessionService(store, app="other")
    await take_turn(one, "s1", "u1", turn_entries("one"), set_values={"app:motd": "hello"})

    assert await take_turn(SessionService(store, app="one"), "s2", "u2", turn_entries("x")) == {
        "app:motd": "hello"
    }
    assert (await one.get_session("s2")).app_values == {"app:motd": "hello"}
    assert await take_turn(other, "s3", "u1", turn_entries("y")) == {}
    assert (await other.get_session("s3")).app_values == {}
    # Apps keep their sessions apart too, even under the same id.
    with pytest.raises(SessionNotFound):
        await other.get_session("s1")
    assert [i.id for i in await other.list_sessions("u1")] == ["s3"]
    assert [i.id for i in await one.list_sessions("u1")] == ["s1"]

    await take_turn(one, "s2", "u2", turn_entries("z"), set_values={"app:motd": "bye"})
    assert (await SessionService(store, app="one").get_session("s1")).app_values == {
        "app:motd": "bye"
    }


async def test_temp_values_are_never_stored(store: CheckpointStore) -> None:
    service = SessionService(store)
    marker = "temp-marker-6f1c2a"
    await take_turn(
        service,
        "s1",
        "u1",
        turn_entries("one"),
        set_values={"temp:scratch": marker, "kept": 1, "user:u": 2, "app:a": 3},
    )
    session = await SessionService(store).get_session("s1")
    assert session.values == {"kept": 1}
    assert session.user_values == {"user:u": 2} and session.app_values == {"app:a": 3}
    assert await take_turn(SessionService(store), "s1", "u1", turn_entries("two")) == {
        "kept": 1,
        "user:u": 2,
        "app:a": 3,
    }
    # Nowhere in the store: no record holds the key or the value.
    everything = [
        (name, data)
        for namespace in await store.namespaces()
        for name, data in await store.scan(namespace)
    ]
    assert everything  # the other values are there
    assert not [name for name, data in everything if b"temp:" in data or marker.encode() in data]
    assert not [name for name, _ in everything if name.startswith("temp:")]


async def test_a_value_that_cannot_be_stored_is_named_and_left_out_of_a_stored_turn(
    store: CheckpointStore,
) -> None:
    service = SessionService(store)
    turn = await service.begin_turn("s1", "u1", "run-1")
    values = turn.values(None)
    values["handle"] = object()
    values["temp:handle"] = object()  # a temp value need not be storable
    values["kept"] = 1
    with pytest.raises(SessionError, match="'handle' cannot be stored") as caught:
        await turn.append(turn_entries("one"), final=True, values=values)
    assert "temp:handle' cannot" not in str(caught.value)
    await turn.release()
    session = await SessionService(store).get_session("s1")  # nothing else was lost
    assert session.turns == 1 and len(session.history) == 2
    assert session.values == {"kept": 1}


# -- listing and deleting ---------------------------------------------------------------


async def test_list_sessions_lists_the_users_sessions_most_recent_first(
    store: CheckpointStore,
) -> None:
    service = SessionService(store)
    for session_id in ("s1", "s2", "s3"):
        await take_turn(service, session_id, "u1", turn_entries(session_id))
    await take_turn(service, "s4", "u2", turn_entries("s4"))
    await take_turn(service, "s1", "u1", turn_entries("s1 again"))

    for reader in (service, SessionService(store)):
        listed = await reader.list_sessions("u1")
        assert [info.id for info in listed] == ["s1", "s3", "s2"]
        assert all(isinstance(info, SessionInfo) for info in listed)
        assert [(i.user_id, i.turns, i.paused) for i in listed] == [
            ("u1", 2, False),
            ("u1", 1, False),
            ("u1", 1, False),
        ]
        assert listed[0].updated >= listed[1].updated >= listed[2].updated
        assert [info.id for info in await reader.list_sessions("u2")] == ["s4"]
        assert await reader.list_sessions("nobody") == []


async def test_get_session_of_an_unknown_or_deleted_session(store: CheckpointStore) -> None:
    service = SessionService(store)
    with pytest.raises(SessionNotFound, match="'missing'"):
        await service.get_session("missing")
    with pytest.raises(SessionNotFound):
        await service.delete_session("missing")

    await take_turn(service, "s1", "u1", turn_entries("one"))
    await take_turn(service, "s2", "u1", turn_entries("two"))
    cached = SessionService(store)
    await cached.get_session("s1")  # cached by another service
    await service.delete_session("s1")

    for reader in (service, cached, SessionService(store)):
        with pytest.raises(SessionNotFound, match="'s1'"):
            await reader.get_session("s1")
        assert [info.id for info in await reader.list_sessions("u1")] == ["s2"]
    assert await records_of(store, "adk", "s1") == {}
    assert [name for name, _ in await store.scan(user_index_namespace("adk", "u1"))] == ["s2"]
    with pytest.raises(SessionNotFound):
        await service.delete_session("s1")

    # The id can be used again: a new session, without the old history.
    await take_turn(cached, "s1", "u9", turn_entries("again"))
    again = await service.get_session("s1")
    assert (again.user_id, again.turns) == ("u9", 1)
    assert pairs(again.history) == pairs(turn_entries("again"))


# -- compaction and the cache -----------------------------------------------------------


async def test_compaction_keeps_30_turns_identical(store: CheckpointStore) -> None:
    service = SessionService(store, compact_every=4)
    expected_entries = []
    expected_values: dict[str, Any] = {}
    for number in range(1, 31):
        entries = turn_entries(f"turn {number}", tools=number % 3 == 0)
        expected_entries += entries
        changes: dict[str, Any] = {"count": number, f"at {number % 5}": [number]}
        remove = ["at 0"] if number % 7 == 0 and "at 0" in expected_values else []
        await take_turn(service, "s1", "u1", entries, set_values=changes, remove=remove)
        expected_values.update(changes)
        for key in remove:
            del expected_values[key]

    for reader in (service, SessionService(store, compact_every=4)):
        session = await reader.get_session("s1")
        assert session.turns == 30
        assert pairs(session.history) == pairs(expected_entries)
        assert session.values == expected_values

    records = await records_of(store, "adk", "s1")
    batches = [name for name in records if name.startswith("t:")]
    segments = [name for name in records if name.startswith("g:")]
    assert len(batches) <= 4
    assert segments  # the history is in segments
    assert set(records) == {"head", "values", *batches, *segments}

    # A fresh service continues it: the next turn sees the same prior history and values.
    fresh = SessionService(store, compact_every=4)
    turn = await fresh.begin_turn("s1", "u1", "run-31")
    assert pairs(turn.prior) == pairs(expected_entries)
    assert turn.values(None) == expected_values
    await turn.append(turn_entries("turn 31"), final=True)
    await turn.release()
    last = await SessionService(store).get_session("s1")
    assert last.turns == 31
    assert pairs(last.history) == pairs(expected_entries + turn_entries("turn 31"))


async def test_a_turn_written_by_another_service_is_seen_by_the_first(
    store: CheckpointStore,
) -> None:
    first, second = SessionService(store, compact_every=3), SessionService(store, compact_every=3)
    await take_turn(first, "s1", "u1", turn_entries("one"), set_values={"by": "first"})
    assert (await first.get_session("s1")).turns == 1  # cached in the first service now

    seen = await take_turn(second, "s1", "u1", turn_entries("two"), set_values={"by": "second"})
    assert seen == {"by": "first"}
    session = await first.get_session("s1")
    assert (session.turns, session.values) == (2, {"by": "second"})
    assert pairs(session.history) == pairs(turn_entries("one") + turn_entries("two"))

    # Turn after turn, alternating services (through a compaction): nothing lost or doubled.
    expected = turn_entries("one") + turn_entries("two")
    for number in range(3, 9):
        writer = first if number % 2 else second
        seen = await take_turn(
            writer, "s1", "u1", turn_entries(str(number)), set_values={"n": number}
        )
        assert seen.get("n") == (number - 1 if number > 3 else None)
        expected += turn_entries(str(number))
    for reader in (first, second):
        session = await reader.get_session("s1")
        assert session.turns == 8 and pairs(session.history) == pairs(expected)


# -- expiry ---------------------------------------------------------------------------------


async def _raw_rows(store: CheckpointStore, prefix: str) -> int:
    """Rows of namespaces starting with ``prefix`` the store still holds, expired or not."""
    kind = kind_of(store)
    if kind == "memory":
        data: dict[str, dict[str, Any]] = store._data  # type: ignore[attr-defined]
        return sum(len(records) for ns, records in data.items() if ns.startswith(prefix))
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(store.path) as conn:  # type: ignore[attr-defined]
            (count,) = conn.execute(
                "SELECT count(*) FROM adk_records WHERE substr(namespace, 1, ?) = ?",
                (len(prefix), prefix),
            ).fetchone()
        return int(count)
    if kind == "postgres":
        import psycopg

        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True) as conn:
            cursor = await conn.execute(
                f"SELECT count(*) FROM {store.table} WHERE left(namespace, %s) = %s",  # type: ignore[attr-defined]
                (len(prefix), prefix),
            )
            row = await cursor.fetchone()
        assert row is not None
        return int(row[0])
    raise AssertionError(kind)


async def test_an_expired_session_is_gone_and_purged(store: CheckpointStore) -> None:
    kind = kind_of(store)
    service = SessionService(store, ttl=1, compact_every=2)
    for turn_number in range(3):  # a segment, a values record and a batch
        await take_turn(service, "s1", "u1", turn_entries(str(turn_number)))
    await take_turn(service, "s2", "u2", turn_entries("other user"))
    ns1 = session_namespace("adk", "s1")
    assert {"head", "values", "t:0000000003"} <= set(dict(await store.scan(ns1)))
    assert (await service.get_session("s1")).turns == 3  # alive a moment after its turn

    await anyio.sleep(1.3)
    # Expired: on the SQL stores and in memory the rows are still there, unread.
    if kind != "redis":
        assert await _raw_rows(store, "session:") >= 6
    else:
        assert await store.namespaces("session:") == []  # Redis dropped the keys itself
    for reader in (service, SessionService(store)):
        with pytest.raises(SessionNotFound):
            await reader.get_session("s1")
        assert await reader.list_sessions("u1") == []
    # The user index entry of u1 was dropped by list_sessions; u2's is still there (stale).
    assert await store.scan(user_index_namespace("adk", "u1")) == []
    assert [n for n, _ in await store.scan(user_index_namespace("adk", "u2"))] == ["s2"]

    deleted = await service.purge_expired()
    assert await store.scan(user_index_namespace("adk", "u2")) == []
    assert await store.namespaces("session") == []
    if kind in ("sqlite", "postgres"):
        assert await _raw_rows(store, "session:") == 0
        assert deleted >= 6 + 1  # the expired rows and u2's index entry
    elif kind == "memory":
        assert await _raw_rows(store, "session:") == 0
        assert deleted >= 1
    else:
        assert deleted == 1  # Redis expires keys itself: only the index entry
    assert await service.list_sessions("u2") == []

    # A new session under the same id starts afresh.
    await take_turn(service, "s1", "u1", turn_entries("new"))
    session = await SessionService(store).get_session("s1")
    assert session.turns == 1 and pairs(session.history) == pairs(turn_entries("new"))


async def test_an_expired_sessions_id_reused_by_another_user_is_not_listed_for_the_first(
    store: CheckpointStore,
) -> None:
    """u1's index still names s1 after it expired; u2 then makes a new s1: it is u2's only."""
    service = SessionService(store, ttl=1)
    await take_turn(service, "s1", "u1", turn_entries("u1's"))
    await anyio.sleep(1.3)
    await take_turn(SessionService(store, ttl=60), "s1", "u2", turn_entries("u2's"))
    assert [n for n, _ in await store.scan(user_index_namespace("adk", "u1"))] == ["s1"]
    # Nothing of u1's expired session is in u2's (its rows may still be in the store, unread).
    for reader in (service, SessionService(store)):
        session = await reader.get_session("s1")
        assert (session.user_id, session.turns) == ("u2", 1)
        assert pairs(session.history) == pairs(turn_entries("u2's"))

    for reader in (service, SessionService(store)):
        assert await reader.list_sessions("u1") == []
        [info] = await reader.list_sessions("u2")
        assert (info.id, info.user_id, info.turns) == ("s1", "u2", 1)
    assert await store.scan(user_index_namespace("adk", "u1")) == []  # the stale entry dropped
    with pytest.raises(SessionError, match="'u2'"):  # and u1 cannot take a turn of it
        await service.begin_turn("s1", "u1", "run-x")


async def test_each_turn_renews_the_whole_sessions_expiry(store: CheckpointStore) -> None:
    """A session's early batches live as long as its latest turn: never a gap in its history."""
    service = SessionService(store, ttl=2)
    await take_turn(service, "s1", "u1", turn_entries("one"))
    await anyio.sleep(1.4)
    await take_turn(service, "s1", "u1", turn_entries("two"))
    await anyio.sleep(1.0)  # batch 1 is now older than the ttl: alive only if renewed
    session = await SessionService(store).get_session("s1")
    assert session.turns == 2
    assert pairs(session.history) == pairs(turn_entries("one") + turn_entries("two"))


# -- paused turns and ownership ---------------------------------------------------------


async def test_a_paused_turn_blocks_new_turns_until_resumed(store: CheckpointStore) -> None:
    service = SessionService(store)
    await take_turn(service, "s1", "u1", turn_entries("one"))
    turn = await service.begin_turn("s1", "u1", "run-2")
    turn.values(None)
    await turn.pause(PausedTurn("run-2", "ckpt-42", ("int-a", "int-b")))
    await turn.release()

    for reader in (service, SessionService(store)):
        with pytest.raises(SessionPaused, match="ckpt-42") as caught:
            await reader.begin_turn("s1", "u1", "run-3")
        assert caught.value.checkpoint_id == "ckpt-42"
        assert caught.value.interrupt_ids == ("int-a", "int-b")
        assert "int-a" in str(caught.value)
        session = await reader.get_session("s1")
        assert session.paused == PausedTurn("run-2", "ckpt-42", ("int-a", "int-b"))
        [info] = await reader.list_sessions("u1")
        assert info.paused
        # Another run cannot claim to be the paused one.
        with pytest.raises(SessionError, match="run-9"):
            await reader.begin_turn("s1", "u1", "run-9", resuming=True)

    # The paused run resumes (from a fresh service), finishes, and the session moves on.
    resumed = await SessionService(store).begin_turn("s1", "u1", "run-2", resuming=True)
    assert pairs(resumed.prior) == pairs(turn_entries("one"))
    await resumed.append(turn_entries("two"), final=True)
    await resumed.release()
    session = await service.get_session("s1")
    assert session.paused is None and session.turns == 2
    await take_turn(service, "s1", "u1", turn_entries("three"))
    assert not (await service.list_sessions("u1"))[0].paused


async def test_a_new_sessions_first_turn_can_pause(store: CheckpointStore) -> None:
    service = SessionService(store)
    turn = await service.begin_turn("s1", "u1", "run-1")
    await turn.pause(PausedTurn("run-1", "ckpt-1", ("i",)))
    await turn.release()
    session = await SessionService(store).get_session("s1")
    assert (session.turns, session.history, session.paused) == (
        0,
        [],
        PausedTurn("run-1", "ckpt-1", ("i",)),
    )
    assert [i.id for i in await service.list_sessions("u1")] == ["s1"]
    with pytest.raises(SessionPaused):
        await SessionService(store).begin_turn("s1", "u1", "run-2")


async def test_another_users_turn_is_refused_naming_both_users(store: CheckpointStore) -> None:
    service = SessionService(store)
    await take_turn(service, "s1", "alice", turn_entries("one"))
    for reader in (service, SessionService(store)):
        with pytest.raises(SessionError) as caught:
            await reader.begin_turn("s1", "mallory", "run-2")
        assert "'alice'" in str(caught.value) and "'mallory'" in str(caught.value)
    # The refused turn let the session go: its owner's next turn runs.
    await take_turn(service, "s1", "alice", turn_entries("two"))
    session = await service.get_session("s1")
    assert session.turns == 2 and session.user_id == "alice"
    assert await service.list_sessions("mallory") == []
