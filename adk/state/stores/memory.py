"""InMemoryStore: checkpoints in a dict, for tests and single-process apps."""

from __future__ import annotations

import time
from collections.abc import Sequence


class InMemoryStore:
    """Keeps records in process memory; nothing survives the process.

    Safe for concurrent use from one event loop (each operation is atomic
    because it never awaits).
    """

    def __init__(self) -> None:
        self._data: dict[str, dict[str, tuple[bytes, float | None]]] = {}

    def _live(self, namespace: str) -> dict[str, tuple[bytes, float | None]]:
        records = self._data.get(namespace)
        if not records:
            return {}
        now = time.time()
        expired = [
            name for name, (_, until) in records.items() if until is not None and until <= now
        ]
        for name in expired:
            del records[name]
        return records

    async def get(self, namespace: str, name: str) -> bytes | None:
        """The record, or None."""
        record = self._live(namespace).get(name)
        return record[0] if record is not None else None

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        """Write a record."""
        until = time.time() + ttl if ttl else None
        records = self._data.setdefault(namespace, {})
        if until is not None:
            self._live(namespace)  # expired records stay expired (a write never revives them)
            for key, (value, _) in records.items():
                records[key] = (value, until)
        records[name] = (bytes(data), until)

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Write several records."""
        for name, data in items:
            await self.put(namespace, name, data, ttl=ttl)

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        """Write a record unless it exists."""
        if name in self._live(namespace):
            return False
        await self.put(namespace, name, data, ttl=ttl)
        return True

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """Live records whose name starts with ``prefix``, sorted."""
        records = self._live(namespace)
        return sorted((n, r[0]) for n, r in records.items() if n.startswith(prefix))

    async def delete(self, namespace: str, name: str | None = None) -> None:
        """Delete a record or a namespace."""
        if name is None:
            self._data.pop(namespace, None)
        else:
            self._data.get(namespace, {}).pop(name, None)

    async def delete_many(self, namespace: str, names: Sequence[str]) -> None:
        """Delete several records of one namespace in one round trip (compaction uses it)."""
        records = self._data.get(namespace, {})
        for name in names:
            records.pop(name, None)

    async def namespaces(self, prefix: str = "") -> list[str]:
        """Namespaces with live records."""
        return sorted(ns for ns in list(self._data) if ns.startswith(prefix) and self._live(ns))

    async def purge_expired(self) -> int:
        """Drop every expired record (reads already skip them); the number dropped."""
        before = sum(len(records) for records in self._data.values())
        for namespace in list(self._data):
            if not self._live(namespace):
                del self._data[namespace]
        return before - sum(len(records) for records in self._data.values())

    async def close(self) -> None:
        """Nothing to release."""
