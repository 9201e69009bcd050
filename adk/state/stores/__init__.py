"""Checkpoint stores: in-memory, SQLite (embedded default), Redis, PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from adk.state.stores.base import CheckpointStore
from adk.state.stores.memory import InMemoryStore
from adk.state.stores.sqlite import SQLiteStore


def open_store(store: CheckpointStore | str | Path | None) -> CheckpointStore:
    """A store from a store object, a SQLite file path, or None (a new in-memory store)."""
    if store is None:
        return InMemoryStore()
    if isinstance(store, str | Path):
        return SQLiteStore(store)
    return store


__all__ = ["CheckpointStore", "InMemoryStore", "SQLiteStore", "open_store"]
