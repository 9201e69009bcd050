"""Sends signals to a run from a process of its own (the cross-process tests start it).

    python -m tests.signals.sender <kind> <address> <extra> <run id> <count> <tag>

``kind``: sqlite (address: the file), redis (address: URL, extra: key prefix),
postgres (address: DSN, extra: table). Each signal is a feedback whose text is
``<tag>:<i>``. Prints "sent <count>" at the end.
"""

from __future__ import annotations

import sys

import anyio

from adk.state.signals import send_signal
from adk.state.stores.base import CheckpointStore


def open_store(kind: str, address: str, extra: str) -> CheckpointStore:
    """The store the parent test uses, opened again in this process."""
    if kind == "sqlite":
        from adk import SQLiteStore

        return SQLiteStore(address)
    if kind == "redis":
        from adk import RedisStore

        return RedisStore(address, key_prefix=extra)
    from adk import PostgresStore

    return PostgresStore(address, table=extra)


async def main(kind: str, address: str, extra: str, run_id: str, count: int, tag: str) -> None:
    store = open_store(kind, address, extra)
    try:
        for i in range(count):
            await send_signal(store, run_id, "feedback", {"text": f"{tag}:{i}"})
    finally:
        await store.close()
    print(f"sent {count}")


if __name__ == "__main__":
    kind, address, extra, run_id, count, tag = sys.argv[1:7]
    anyio.run(main, kind, address, extra, run_id, int(count), tag)
