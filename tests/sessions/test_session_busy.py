"""One turn at a time per session: in one process, across processes, and after a holder dies.

The cross-process tests start ``tests/sessions/turn_holder.py`` in a child
process on the same SQLite file, Redis server or PostgreSQL table: it takes a
turn and holds it until the test writes a file (or kills it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from adk.sessions import SessionBusy, SessionService
from adk.sessions.turn import SessionTurn
from adk.state.stores.base import CheckpointStore
from tests.runner.stores import dispose, open_test_store
from tests.sessions.conftest import kind_of, pairs, take_turn, turn_entries

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
WAIT = 60.0  # seconds a child may take to start (a failure bound, not a speed check)


# -- in one process ---------------------------------------------------------------------


async def test_a_second_turn_of_a_session_is_refused_until_the_first_ends(
    store: CheckpointStore,
) -> None:
    service = SessionService(store)
    await take_turn(service, "s1", "u1", turn_entries("before"))
    first = await service.begin_turn("s1", "u1", "run-1")
    for contender in (service, SessionService(store)):  # the same service, or another one
        with pytest.raises(SessionBusy, match="'s1'"):
            await contender.begin_turn("s1", "u1", "run-2")
    # Other sessions are not held.
    await take_turn(service, "s2", "u1", turn_entries("elsewhere"))

    # The refused turns did not disturb the held one: it appends and ends normally.
    first.values(None)
    await first.append(turn_entries("first"), final=True)
    with pytest.raises(SessionBusy):  # appended, but still held until released
        await service.begin_turn("s1", "u1", "run-2")
    await first.release()

    second = await SessionService(store).begin_turn("s1", "u1", "run-2")
    assert pairs(second.prior) == pairs(turn_entries("before") + turn_entries("first"))
    await second.append(turn_entries("second"), final=True)
    await second.release()
    session = await service.get_session("s1")
    assert session.turns == 3
    assert pairs(session.history) == pairs(
        turn_entries("before") + turn_entries("first") + turn_entries("second")
    )


async def test_of_many_simultaneous_turns_exactly_one_runs(store: CheckpointStore) -> None:
    await take_turn(SessionService(store), "s1", "u1", turn_entries("before"))
    services = [SessionService(store) for _ in range(8)]
    won: list[SessionTurn] = []
    refused: list[int] = []

    async def contend(number: int) -> None:
        try:
            won.append(await services[number].begin_turn("s1", "u1", f"run-{number}"))
        except SessionBusy:
            refused.append(number)

    async with anyio.create_task_group() as group:
        for number in range(len(services)):
            group.start_soon(contend, number)
    assert len(won) == 1 and len(refused) == len(services) - 1
    [turn] = won
    await turn.append(turn_entries(turn.run_id), final=True)
    await turn.release()
    session = await SessionService(store).get_session("s1")
    assert pairs(session.history) == pairs(turn_entries("before") + turn_entries(turn.run_id))


# -- across processes -------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "redis", "postgres"])
async def shared_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[CheckpointStore]:
    """A store another process can open too."""
    opened = await open_test_store(request.param, tmp_path)
    try:
        yield opened
    finally:
        await dispose(opened)


class Holder:
    """A child process holding a turn of session ``s1`` (see turn_holder.py)."""

    def __init__(self, store: CheckpointStore, folder: Path, name: str) -> None:
        self.name = name
        self.ready = folder / f"{name}.ready"
        self.go = folder / f"{name}.go"
        self.config: dict[str, Any] = {
            "kind": kind_of(store),
            "app": "adk",
            "session": "s1",
            "user": "u1",
            "run": f"run-{name}",
            "ready": str(self.ready),
            "go": str(self.go),
            "lock_seconds": 600.0,  # a dead holder's lease must not simply expire
            "entries": [["user", f"{name}: question"], ["assistant", f"{name}: answer"]],
        }
        kind = self.config["kind"]
        if kind == "sqlite":
            self.config["path"] = store.path  # type: ignore[attr-defined]
        elif kind == "redis":
            self.config.update(url=store.url, prefix=store.key_prefix)  # type: ignore[attr-defined]
        else:
            self.config.update(dsn=store.dsn, table=store.table)  # type: ignore[attr-defined]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.sessions.turn_holder", json.dumps(self.config)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    @property
    def entries(self) -> list[tuple[str | None, str]]:
        return [(None, f"{self.name}: question"), ("child", f"{self.name}: answer")]

    def failure(self) -> str:
        self.process.kill()
        _, stderr = self.process.communicate()
        return f"child {self.name} (exit {self.process.returncode}): {stderr.decode()[-2000:]}"

    async def started(self) -> str:
        """Wait until the child holds its turn (or was refused); the ready file's content."""
        deadline = time.monotonic() + WAIT
        while not self.ready.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(self.failure())
            await anyio.sleep(0.01)
        return self.ready.read_text()

    async def exit_code(self) -> int:
        deadline = time.monotonic() + WAIT
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                pytest.fail(self.failure())
            await anyio.sleep(0.01)
        return self.process.returncode

    async def finish(self) -> None:
        """Let the child end its turn; wait until it has."""
        self.go.write_text("go")
        code = await self.exit_code()
        assert code == 0, self.failure()

    def kill(self) -> None:
        """SIGKILL the child and reap it (a zombie's pid would still count as alive)."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        assert self.process.returncode == -signal.SIGKILL


@contextmanager
def holder(store: CheckpointStore, folder: Path, name: str) -> Iterator[Holder]:
    child = Holder(store, folder, name)
    try:
        yield child
    finally:
        if child.process.poll() is None:
            child.process.kill()
            child.process.wait()
        if child.process.stderr is not None:
            child.process.stderr.close()


def contents(store_history: list[Any]) -> list[tuple[str | None, str]]:
    return [(entry.agent_name, entry.message.content) for entry in store_history]


async def test_a_turn_held_by_another_process_is_busy_until_it_ends(
    shared_store: CheckpointStore, tmp_path: Path
) -> None:
    service = SessionService(shared_store)
    await take_turn(service, "s1", "u1", turn_entries("before"))
    with holder(shared_store, tmp_path, "child") as child:
        pid = await child.started()
        assert pid == str(child.process.pid)
        for _ in range(2):  # refused at once, and again: the other process still holds it
            with pytest.raises(SessionBusy, match="'s1'"):
                await service.begin_turn("s1", "u1", "run-parent")
        await child.finish()

    turn = await service.begin_turn("s1", "u1", "run-parent")
    assert turn.values(None) == {"by": "run-child"}  # the child's turn is read, not the cache
    assert contents(turn.prior) == contents(turn_entries("before")) + child.entries
    await turn.append(turn_entries("parent"), final=True)
    await turn.release()

    expected = contents(turn_entries("before")) + child.entries + contents(turn_entries("parent"))
    for reader in (service, SessionService(shared_store)):
        session = await reader.get_session("s1")
        assert contents(session.history) == expected  # each turn once, in order
        assert session.turns == 3


async def test_another_process_is_refused_while_this_one_holds_the_turn(
    shared_store: CheckpointStore, tmp_path: Path
) -> None:
    service = SessionService(shared_store)
    turn = await service.begin_turn("s1", "u1", "run-parent")
    try:
        with holder(shared_store, tmp_path, "late") as child:
            assert await child.exit_code() == 3, child.failure()
            assert child.ready.read_text() == "busy"
        await turn.append(turn_entries("parent"), final=True)
    finally:
        await turn.release()
    session = await SessionService(shared_store).get_session("s1")
    assert contents(session.history) == contents(turn_entries("parent"))


async def test_a_killed_turn_holder_does_not_block_the_session(
    shared_store: CheckpointStore, tmp_path: Path
) -> None:
    service = SessionService(shared_store, lock_seconds=600)
    await take_turn(service, "s1", "u1", turn_entries("before"))
    with holder(shared_store, tmp_path, "doomed") as child:
        await child.started()
        with pytest.raises(SessionBusy):
            await service.begin_turn("s1", "u1", "run-parent")
        child.kill()

    # Its lease (600 s) has not expired: it is taken over because its pid is gone.
    turn = await service.begin_turn("s1", "u1", "run-parent")
    try:
        with pytest.raises(SessionBusy):  # and now this process holds it
            await SessionService(shared_store).begin_turn("s1", "u1", "run-other")
        assert contents(turn.prior) == contents(turn_entries("before"))
        await turn.append(turn_entries("parent"), final=True)
    finally:
        await turn.release()
    session = await SessionService(shared_store).get_session("s1")
    assert session.turns == 2
    assert contents(session.history) == contents(turn_entries("before") + turn_entries("parent"))
