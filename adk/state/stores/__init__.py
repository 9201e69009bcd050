"""Checkpoint stores: in-memory, SQLite (embedded default), Redis, PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from adk.errors import ArgumentTypeError
from adk.state.stores.base import CheckpointStore, StoreUnavailable
from adk.state.stores.memory import InMemoryStore

if TYPE_CHECKING:
    from adk.state.stores.sqlite import SQLiteStore


def open_store(store: CheckpointStore | str | Path | None) -> CheckpointStore:
    """A store from a store object, a SQLite file path, or None (a new in-memory store).

    Anything else raises ``TypeError`` now, rather than an ``AttributeError``
    at the first checkpoint.
    """
    if store is None:
        return InMemoryStore()
    if isinstance(store, str | Path):
        from adk.state.stores.sqlite import SQLiteStore  # sqlite3 only when a file is used

        return SQLiteStore(store)
    if not isinstance(store, CheckpointStore):
        raise ArgumentTypeError(
            "checkpoint_store must be a CheckpointStore (e.g. InMemoryStore(), SQLiteStore(path)), "
            f"a SQLite file path (str or Path) or None, got {type(store).__name__} {store!r}"
        )
    return store


__all__ = ["CheckpointStore", "InMemoryStore", "SQLiteStore", "StoreUnavailable", "open_store"]


def __getattr__(name: str) -> Any:
    if name == "SQLiteStore":
        from adk.state.stores.sqlite import SQLiteStore

        return SQLiteStore
    raise AttributeError(f"module 'adk.state.stores' has no attribute {name!r}")
