"""Operations that meet a running turn: deleting, listing while a session is created, failed writes.

Interleavings are made exact with :class:`Interposed`, a real store (each of
the four) that runs a test's hook just before a chosen write: another
service's call at the worst moment, or a store failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import pytest

from adk.sessions import (
    PausedTurn,
    SessionBusy,
    SessionCorrupted,
    SessionNotFound,
    SessionPaused,
    SessionService,
)
from adk.sessions.records import user_index_namespace
from adk.state.stores.base import CheckpointStore, StoreUnavailable
from tests.sessions.conftest import pairs, take_turn, turn_entries

pytestmark = pytest.mark.anyio

Hook = Callable[[], Awaitable[None]]


class Interposed:
    """``inner`` (a real store), running a hook once before a write of a chosen record."""

    def __init__(self, inner: CheckpointStore) -> None:
        self.inner = inner
        self.hooks: dict[tuple[str, str], Hook] = {}

    def before(self, operation: str, name_prefix: str, hook: Hook) -> None:
        self.hooks[(operation, name_prefix)] = hook

    async def _run_hook(self, operation: str, names: Sequence[str]) -> None:
        for (op, prefix), hook in list(self.hooks.items()):
            if op == operation and any(name.startswith(prefix) for name in names):
                del self.hooks[(op, prefix)]
                await hook()

    async def get(self, namespace: str, name: str) -> bytes | None:
        return await self.inner.get(namespace, name)

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        await self._run_hook("put", [name])
        await self.inner.put(namespace, name, data, ttl=ttl)

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        await self._run_hook("put_many", [name for name, _ in items])
        await self.inner.put_many(namespace, items, ttl=ttl)

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        await self._run_hook("put_if_absent", [name])
        return await self.inner.put_if_absent(namespace, name, data, ttl=ttl)

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        return await self.inner.scan(namespace, prefix)

    async def delete(self, namespace: str, name: str | None = None) -> None:
        await self.inner.delete(namespace, name)

    async def namespaces(self, prefix: str = "") -> list[str]:
        return await self.inner.namespaces(prefix)

    async def purge_expired(self) -> int:
        purge = getattr(self.inner, "purge_expired", None)
        return int(await purge()) if purge is not None else 0

    async def close(self) -> None:
        await self.inner.close()


async def store_failure() -> None:
    raise StoreUnavailable("test", "nowhere", "write", "injected failure")


# -- deleting a session while a turn of it runs -----------------------------------------


async def test_a_session_cannot_be_deleted_under_a_running_turn(store: CheckpointStore) -> None:
    service = SessionService(store)
    await take_turn(service, "s1", "u1", turn_entries("one"))
    turn = await service.begin_turn("s1", "u1", "run-2")
    try:
        with pytest.raises(SessionBusy, match="'s1'"):
            await SessionService(store).delete_session("s1")
        turn.values(None)
        await turn.append(turn_entries("two"), final=True)
    finally:
        await turn.release()

    # The turn's append did not land in a deleted session's remains: the session is whole.
    session = await SessionService(store).get_session("s1")
    assert session.turns == 2
    assert pairs(session.history) == pairs(turn_entries("one") + turn_entries("two"))
    # Once the turn has ended, it is deleted, and the next turn starts afresh.
    await SessionService(store).delete_session("s1")
    with pytest.raises(SessionNotFound):
        await service.get_session("s1")
    await take_turn(service, "s1", "u1", turn_entries("fresh"))
    session = await SessionService(store).get_session("s1")
    assert session.turns == 1 and pairs(session.history) == pairs(turn_entries("fresh"))


async def test_no_delete_and_append_interleaving_leaves_a_corrupted_session(
    store: CheckpointStore,
) -> None:
    """Deleting just before the turn's batch is claimed: refused, not half done."""
    wrapped = Interposed(store)
    service = SessionService(wrapped)
    await take_turn(service, "s1", "u1", turn_entries("one"))
    refused: list[BaseException] = []

    async def delete_now() -> None:
        try:
            await SessionService(store).delete_session("s1")
        except SessionBusy as exc:
            refused.append(exc)

    wrapped.before("put_if_absent", "t:", delete_now)
    await take_turn(service, "s1", "u1", turn_entries("two"))
    assert len(refused) == 1
    try:
        session = await SessionService(store).get_session("s1")
    except SessionCorrupted as exc:  # pragma: no cover - the failure this test guards against
        pytest.fail(f"the session was corrupted by a delete during its turn: {exc}")
    assert pairs(session.history) == pairs(turn_entries("one") + turn_entries("two"))
    assert [i.id for i in await service.list_sessions("u1")] == ["s1"]


# -- listing while a new session is created ---------------------------------------------


@pytest.mark.parametrize("cleaner", ["list_sessions", "purge_expired"])
async def test_a_session_being_created_stays_listed(store: CheckpointStore, cleaner: str) -> None:
    """Its index entry is written, then its head: a listing in between must not drop the entry."""
    wrapped = Interposed(store)
    other = SessionService(store)
    listed: list[list[str]] = []

    async def list_now() -> None:
        if cleaner == "list_sessions":
            listed.append([info.id for info in await other.list_sessions("u1")])
        else:
            await other.purge_expired()
            listed.append([])

    wrapped.before("put", "head", list_now)
    await take_turn(SessionService(wrapped), "s1", "u1", turn_entries("one"))
    assert listed == [[]]  # it ran, between the index entry and the head

    assert [name for name, _ in await store.scan(user_index_namespace("adk", "u1"))] == ["s1"]
    for reader in (other, SessionService(store)):
        assert [info.id for info in await reader.list_sessions("u1")] == ["s1"]


async def test_a_stale_index_entry_is_still_dropped(store: CheckpointStore) -> None:
    """The entry of a session that is gone (no head, no turn holding it) is dropped."""
    service = SessionService(store)
    await store.put(user_index_namespace("adk", "u1"), "ghost", b"")
    await store.put(user_index_namespace("adk", "u2"), "ghost2", b"")
    await take_turn(service, "s1", "u1", turn_entries("one"))
    assert [info.id for info in await service.list_sessions("u1")] == ["s1"]
    assert [n for n, _ in await store.scan(user_index_namespace("adk", "u1"))] == ["s1"]
    assert await service.purge_expired() >= 1
    assert await store.scan(user_index_namespace("adk", "u2")) == []


# -- a write that fails part-way --------------------------------------------------------


async def paused_session(service: SessionService) -> None:
    await take_turn(service, "s1", "u1", turn_entries("one"))
    turn = await service.begin_turn("s1", "u1", "run-2")
    await turn.pause(PausedTurn("run-2", "ckpt-2", ("i1",)))
    await turn.release()


async def test_a_failed_append_leaves_the_session_as_stored(store: CheckpointStore) -> None:
    """The resumed turn's append fails: the session is still paused, here and elsewhere."""
    wrapped = Interposed(store)
    service = SessionService(wrapped)
    await paused_session(service)

    resumed = await service.begin_turn("s1", "u1", "run-2", resuming=True)
    wrapped.before("put_if_absent", "t:", store_failure)
    with pytest.raises(StoreUnavailable):
        await resumed.append(turn_entries("two"), final=True, agent="helper")
    await resumed.release()

    for reader in (service, SessionService(store)):  # the service's memory agrees with the store
        with pytest.raises(SessionPaused):
            await reader.begin_turn("s1", "u1", "run-3")
        session = await reader.get_session("s1")
        assert (session.turns, session.agent) == (1, None)
        assert session.paused == PausedTurn("run-2", "ckpt-2", ("i1",))

    # Resumed again, it finishes once.
    resumed = await service.begin_turn("s1", "u1", "run-2", resuming=True)
    await resumed.append(turn_entries("two"), final=True)
    await resumed.release()
    session = await SessionService(store).get_session("s1")
    assert session.paused is None and session.turns == 2
    assert pairs(session.history) == pairs(turn_entries("one") + turn_entries("two"))


async def test_a_failed_pause_leaves_the_session_as_stored(store: CheckpointStore) -> None:
    wrapped = Interposed(store)
    service = SessionService(wrapped)
    await take_turn(service, "s1", "u1", turn_entries("one"))
    turn = await service.begin_turn("s1", "u1", "run-2")
    wrapped.before("put", "head", store_failure)
    with pytest.raises(StoreUnavailable):
        await turn.pause(PausedTurn("run-2", "ckpt-2", ("i1",)))
    await turn.release()

    for reader in (service, SessionService(store)):
        assert (await reader.get_session("s1")).paused is None
    await take_turn(service, "s1", "u1", turn_entries("three"))  # not refused as paused
    assert (await SessionService(store).get_session("s1")).turns == 2
