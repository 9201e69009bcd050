"""The CheckpointStore protocol: a small namespaced key-value interface.

A run keeps its records in one namespace (``run:<run id>``): its metadata,
the chunks of its append-only journal, its checkpoints and resume claims.
Every backend implements the same eight operations; ``put_if_absent`` must
be atomic across processes, since it is what makes a resume single-shot.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class CheckpointStore(Protocol):
    """Where checkpoints live: in memory, SQLite, Redis or PostgreSQL.

    ``ttl`` is in seconds and applies to a whole namespace: a write with a
    ttl makes every record of its namespace expire ``ttl`` seconds from now
    (a run's records live and expire together). An expired record reads as
    missing.
    """

    async def get(self, namespace: str, name: str) -> bytes | None:
        """The record ``name`` in ``namespace``, or None."""
        ...

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        """Write (or overwrite) a record."""
        ...

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Write several records of one namespace together (one round trip, all or none)."""
        ...

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        """Write a record only if it does not exist; True if this call wrote it (atomic)."""
        ...

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """Every live record of ``namespace`` whose name starts with ``prefix``, sorted by name."""
        ...

    async def delete(self, namespace: str, name: str | None = None) -> None:
        """Delete one record, or the whole namespace when ``name`` is None."""
        ...

    async def namespaces(self, prefix: str = "") -> list[str]:
        """Names of the namespaces that hold live records and start with ``prefix``, sorted."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
