"""Fixtures and helpers of the session tests: the four stores, turns, entries.

Every store is real: memory, a SQLite file, and the Redis and PostgreSQL
servers on loopback (skipped when down, failed under ADK_REQUIRE_SERVICES=1).
Tests run on asyncio (the Redis and PostgreSQL drivers run on asyncio only).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from adk import InMemoryStore, Message, PostgresStore, RedisStore, SQLiteStore, ToolCall
from adk.events import HistoryEntry
from adk.messages import Usage
from adk.sessions import SessionService
from adk.sessions.records import session_namespace
from adk.state.stores.base import CheckpointStore
from tests.runner.stores import STORE_KINDS, dispose, open_test_store

_runs = itertools.count(1)


def kind_of(store: CheckpointStore) -> str:
    """``"memory"``, ``"sqlite"``, ``"redis"`` or ``"postgres"``."""
    kinds = {InMemoryStore: "memory", SQLiteStore: "sqlite", RedisStore: "redis"}
    return kinds.get(type(store), "postgres" if isinstance(store, PostgresStore) else "?")


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CheckpointStore]:
    """A fresh, isolated store of each kind."""
    opened = await open_test_store(request.param, tmp_path)
    try:
        yield opened
    finally:
        await dispose(opened)


def turn_entries(label: str, *, tools: bool = False) -> list[HistoryEntry]:
    """The messages of one turn: the user's, then the agent's (with a tool call if ``tools``)."""
    entries = [HistoryEntry(None, Message.user(f"{label}: question"))]
    if tools:
        call = ToolCall(id=f"call-{label}", name="lookup", arguments=f'{{"q": "{label}"}}')
        entries += [
            HistoryEntry(
                "helper",
                Message(
                    role="assistant",
                    content="",
                    tool_calls=(call,),
                    usage=Usage(prompt_tokens=11, completion_tokens=3, cached_tokens=2),
                ),
            ),
            HistoryEntry(
                "helper",
                Message(role="tool", content=f"found {label}", tool_call_id=call.id, name="lookup"),
            ),
        ]
    entries.append(HistoryEntry("helper", Message.assistant(f"{label}: answer")))
    return entries


def pairs(entries: Sequence[HistoryEntry]) -> list[tuple[str | None, Message]]:
    """What a stored session keeps of each entry: its author and its message."""
    return [(entry.agent_name, entry.message) for entry in entries]


async def take_turn(
    service: SessionService,
    session_id: str,
    user_id: str | None,
    entries: Sequence[HistoryEntry],
    *,
    set_values: Mapping[str, Any] | None = None,
    remove: Sequence[str] = (),
    run_id: str | None = None,
    agent: str | None = None,
) -> dict[str, Any]:
    """One whole turn: begin, read the values, change them, append, release.

    Returns the values the turn started with (as the run saw them).
    """
    turn = await service.begin_turn(session_id, user_id, run_id or f"run-{next(_runs)}")
    try:
        values = turn.values(None)
        seen = dict(values)
        values.update(set_values or {})
        for key in remove:
            del values[key]
        await turn.append(entries, final=True, values=values, agent=agent)
    finally:
        await turn.release()
    return seen


async def records_of(store: CheckpointStore, app: str, session_id: str) -> dict[str, bytes]:
    """Every live record of one session, by name."""
    return dict(await store.scan(session_namespace(app, session_id)))
