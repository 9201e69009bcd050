"""A process that takes one turn of a stored session and holds it until told to finish.

Run by tests/sessions/test_session_busy.py as
``python -m tests.sessions.turn_holder '<json config>'``. The config names the
store (``kind`` and its address), the session, and two files: ``ready`` is
written (with this pid) once the turn is held, or with ``busy`` if the turn
was refused; the turn ends (appends ``entries``, releases) when ``go``
appears. Exits 0 when done, 3 if the turn was refused as busy.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import anyio

from adk import Message, PostgresStore, RedisStore, SQLiteStore
from adk.events import HistoryEntry
from adk.sessions import SessionBusy, SessionService
from adk.state.stores.base import CheckpointStore


def open_store(config: dict[str, Any]) -> CheckpointStore:
    kind = config["kind"]
    if kind == "sqlite":
        return SQLiteStore(config["path"])
    if kind == "redis":
        return RedisStore(config["url"], key_prefix=config["prefix"])
    if kind == "postgres":
        return PostgresStore(config["dsn"], table=config["table"])
    raise ValueError(kind)


async def announce(path: anyio.Path, text: str) -> None:
    """Write ``path`` whole at once (renamed into place): it is never seen half-written."""
    partial = anyio.Path(f"{path}.partial")
    await partial.write_text(text)
    await partial.rename(path)


async def main(config: dict[str, Any]) -> int:
    store = open_store(config)
    ready, go = anyio.Path(config["ready"]), anyio.Path(config["go"])
    try:
        service = SessionService(store, app=config["app"], lock_seconds=config["lock_seconds"])
        try:
            turn = await service.begin_turn(config["session"], config["user"], config["run"])
        except SessionBusy:
            await announce(ready, "busy")
            return 3
        values = turn.values(None)
        await announce(ready, str(os.getpid()))
        deadline = time.monotonic() + config.get("wait", 60)
        while not await go.exists():  # held until the test says so (or kills this process)
            if time.monotonic() > deadline:
                raise TimeoutError("never told to finish the turn")
            await anyio.sleep(0.01)
        entries = [
            HistoryEntry(None if role == "user" else "child", Message(role=role, content=text))
            for role, text in config["entries"]
        ]
        values["by"] = config["run"]
        await turn.append(entries, final=True, values=values)
        await turn.release()
        return 0
    finally:
        await store.close()


if __name__ == "__main__":
    sys.exit(anyio.run(main, json.loads(sys.argv[1])))
