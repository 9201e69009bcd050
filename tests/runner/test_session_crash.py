"""A session turn under ``durability="step"`` killed at every store write, then finished.

A forked child takes a turn (three tool calls) and dies (``os._exit``) at
write K; the parent resumes the turn by its run id, or starts it again if
the child died before anything was journaled. Whatever K, the session ends
with the turn exactly once (no message lost or appended twice) and takes its
next turn.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import anyio
import pytest

from adk import (
    ChatModelAgent,
    CheckpointNotFound,
    Message,
    ModelRequest,
    Runner,
    ScriptedModel,
    SessionError,
    SQLiteStore,
    ToolCall,
    tool,
)

RUN_ID = "turn-1"


class KillingStore(SQLiteStore):
    """Dies after its ``kill_at``-th write (any kind of write)."""

    def __init__(self, path: Path, kill_at: int | None) -> None:
        super().__init__(path)
        self.kill_at = kill_at
        self.writes = 0

    def _hit(self) -> None:
        self.writes += 1
        if self.kill_at is not None and self.writes == self.kill_at:
            os._exit(9)

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        await super().put(namespace, name, data, ttl=ttl)
        self._hit()

    async def put_many(
        self, namespace: str, items: list[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:  # type: ignore[override]
        await super().put_many(namespace, items, ttl=ttl)
        self._hit()

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        written = await super().put_if_absent(namespace, name, data, ttl=ttl)
        self._hit()
        return written


def build_runner(db: Path, kill_at: int | None) -> tuple[Runner, KillingStore]:
    @tool
    def step(n: int) -> str:
        """One step."""
        return f"step {n} done"

    def reply(request: ModelRequest) -> Message | str:
        done = sum(1 for m in request.messages if m.role == "tool")
        users = sum(1 for m in request.messages if m.role == "user")
        if done < 3 * users:
            call = ToolCall(id=f"c{done}", name="step", arguments=json.dumps({"n": done}))
            return Message(role="assistant", content="", tool_calls=(call,))
        return f"turn {users} finished"

    store = KillingStore(db, kill_at)
    agent = ChatModelAgent("bot", model=ScriptedModel(reply), tools=[step])
    return Runner(agent, checkpoint_store=store, durability="step"), store


def run_child(db: Path, kill_at: int) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns into pytest
        code = 0
        try:
            runner, _ = build_runner(db, kill_at)
            anyio.run(lambda: runner.invoke("go", session_id="s", user_id="ada", run_id=RUN_ID))
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def clean_writes(tmp_path: Path) -> int:
    runner, store = build_runner(tmp_path / "clean.db", None)
    anyio.run(lambda: runner.invoke("go", session_id="s", user_id="ada", run_id=RUN_ID))
    return store.writes


def _kill_points() -> int:
    with tempfile.TemporaryDirectory() as folder:
        return clean_writes(Path(folder))


KILL_POINTS = _kill_points()
"""Writes the turn makes, counted on a clean run: the child is killed after each of them."""


def test_the_turn_has_many_kill_points() -> None:
    assert KILL_POINTS >= 20  # lease, meta, journal chunks, session batches and heads...


@pytest.mark.parametrize("kill_at", range(1, KILL_POINTS + 1))
def test_a_turn_killed_at_any_write_is_finished_once(kill_at: int, tmp_path: Path) -> None:
    db = tmp_path / "chat.db"
    assert run_child(db, kill_at) == 9

    async def finish() -> None:
        runner, _ = build_runner(db, None)
        try:
            result = await runner.resume_invoke(RUN_ID)
            assert result.text == "turn 1 finished"
        except CheckpointNotFound:  # died before its first journal write: take the turn again
            result = await runner.invoke("go", session_id="s", user_id="ada", run_id="turn-1b")
            assert result.text == "turn 1 finished"
        except SessionError as exc:  # died after its turn was appended: nothing to finish
            assert "already finished and its turn is in session" in str(exc)
        second = await runner.invoke("more", session_id="s", user_id="ada")
        assert second.text == "turn 2 finished"
        session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
        roles = [e.message.role for e in session.history]
        one_turn = ["user"] + ["assistant", "tool"] * 3 + ["assistant"]
        assert roles == one_turn * 2, roles
        assert session.turns == 2 and session.user_id == "ada"

    anyio.run(finish)
