"""A session turn costs the same at turn 60 as at turn 6: round trips and bytes written."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from adk import ChatModelAgent, ModelRequest, Runner, ScriptedModel, SessionService, SQLiteStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CountingStore(SQLiteStore):
    """A real SQLite store that counts its operations and the bytes it is given to write."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls: Counter[str] = Counter()
        self.written = 0

    def reset(self) -> None:
        self.calls.clear()
        self.written = 0

    async def get(self, namespace: str, name: str) -> bytes | None:
        self.calls["get"] += 1
        return await super().get(namespace, name)

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        self.calls["scan"] += 1
        return await super().scan(namespace, prefix)

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        self.calls["put"] += 1
        self.written += len(data)
        await super().put(namespace, name, data, ttl=ttl)

    async def put_many(  # type: ignore[override]
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        self.calls["put_many"] += 1
        self.written += sum(len(data) for _, data in items)
        await super().put_many(namespace, items, ttl=ttl)

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        self.calls["put_if_absent"] += 1
        self.written += len(data)
        return await super().put_if_absent(namespace, name, data, ttl=ttl)

    async def delete(self, namespace: str, name: str | None = None) -> None:
        self.calls["delete"] += 1
        await super().delete(namespace, name)


def reply(request: ModelRequest) -> str:
    return "answer " + "x" * 200


async def test_a_turn_makes_the_same_store_calls_and_writes_the_same_bytes_late_as_early(
    tmp_path: Path,
) -> None:
    store = CountingStore(tmp_path / "chat.db")
    sessions = SessionService(store, app="bot", compact_every=1000)  # no compaction in range
    runner = Runner(ChatModelAgent("bot", model=ScriptedModel(reply)), sessions=sessions)
    costs: dict[int, tuple[Counter[str], int]] = {}
    for turn in range(1, 61):
        store.reset()
        await runner.invoke(f"question {turn:03d}", session_id="s", user_id="u")
        costs[turn] = (Counter(store.calls), store.written)
    early_calls, early_bytes = costs[6]
    late_calls, late_bytes = costs[60]
    assert late_calls == early_calls  # a fixed number of round trips: no scan of the history
    assert sum(late_calls.values()) <= 8
    assert late_bytes <= early_bytes + 16  # O(turn) bytes: never a rewrite of the history


async def test_a_cold_load_is_one_scan_of_a_compacted_session(tmp_path: Path) -> None:
    store = CountingStore(tmp_path / "chat.db")
    runner = Runner(
        ChatModelAgent("bot", model=ScriptedModel(reply)),
        sessions=SessionService(store, app="bot", compact_every=8),
    )
    for turn in range(40):
        await runner.invoke(f"question {turn}", session_id="s", user_id="u")
    records = [name for name, _ in await store.scan("session:bot:s")]
    assert len([n for n in records if n.startswith("t:")]) < 8
    assert len([n for n in records if n.startswith("g:")]) == 5
    store.reset()
    session = await SessionService(store, app="bot").get_session("s")  # a cold service
    assert store.calls["scan"] == 3  # the session, the user's values, the app's values
    assert session.turns == 40 and len(session.history) == 80
