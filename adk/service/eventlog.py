"""The durable event log of a run: what SSE readers stream, from any server process.

Whoever executes a run (the embedded queue or an ``adk worker``) appends
every complete event to the run's log as it is produced; any server process
reads it. The log lives in the checkpoint store, namespace
``events:<run id>`` (inside the run's workspace), one JSON record per entry
named ``e:<seq>`` with ``seq`` 1, 2, 3... zero-padded so that names sort in
order. Entries are written with ``put_if_absent`` at the next free number,
like the signal log (:mod:`adk.state.signals`): two writers never overwrite
each other and the log has no gaps, so a reader that knows the last ``seq``
it saw reads the rest with no gap and no duplicate, in this process or in
another after a restart (SSE ``Last-Event-ID``).

Two kinds of entries: ``event`` (an :class:`~adk.AgentEvent` as JSON) and
``status`` (the run's status changed: queued, running, interrupted, paused,
completed, failed, cancelled). A log whose last entry is a stopping status
is complete for now: a reader stops there (a resumed run appends
``queued``/``running`` and goes on).

Partial (streamed) events are not logged: they are deltas of a message the
log gets whole a moment later, and storing every token would multiply the
writes by the length of the answer. Readers wake on the store's
notifications where it has them (Redis pub/sub, PostgreSQL NOTIFY) and poll
otherwise.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import anyio

from adk.events import AgentEvent
from adk.state.stores.base import CheckpointStore, StoreUnavailable, Subscription

logger = logging.getLogger("adk.service")

PREFIX = "e:"
_DIGITS = 12
STOPPED = frozenset({"interrupted", "paused", "completed", "failed", "cancelled"})
"""Statuses at which a run's log is complete until the run is continued."""
FINISHED = frozenset({"completed", "failed", "cancelled"})


def log_namespace(run_id: str) -> str:
    """The store namespace of ``run_id``'s event log."""
    return f"events:{run_id}"


def entry_name(seq: int) -> str:
    """The record name of entry ``seq``."""
    return f"{PREFIX}{seq:0{_DIGITS}d}"


@dataclass(frozen=True)
class LogEntry:
    """One entry: its ``seq``, ``kind`` (``event`` or ``status``), ``data`` and write time."""

    seq: int
    kind: str
    data: dict[str, Any]
    at: float

    @property
    def stops(self) -> bool:
        """True for a status entry at which the run stopped."""
        return self.kind == "status" and self.data.get("status") in STOPPED

    def encode(self) -> bytes:
        """The stored JSON record."""
        record = {"seq": self.seq, "kind": self.kind, "data": self.data, "at": self.at}
        return json.dumps(record, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, data: bytes) -> LogEntry:
        """The entry read back (a damaged record becomes an ``error`` entry, not an exception)."""
        try:
            raw = json.loads(data)
            return cls(int(raw["seq"]), str(raw["kind"]), dict(raw["data"]), float(raw["at"]))
        except (ValueError, KeyError, TypeError) as exc:
            return cls(0, "error", {"type": "EventLogCorrupted", "message": str(exc)}, 0.0)


def event_data(event: AgentEvent) -> dict[str, Any]:
    """An event as the JSON the log stores and SSE sends."""
    return event.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


class EventLog:
    """The log of one run in ``store`` (a workspace's store): append, read, follow.

    ``ttl``: seconds the log lives after its last write (the Runner's checkpoint ttl).
    """

    def __init__(self, store: CheckpointStore, run_id: str, ttl: float | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.ttl = ttl
        self.namespace = log_namespace(run_id)
        self._next: int | None = None

    async def last_seq(self) -> int:
        """The seq of the last entry (0 for an empty log)."""
        records = await self.store.scan(self.namespace, PREFIX)
        return int(records[-1][0][len(PREFIX) :]) if records else 0

    async def append(self, kind: str, data: dict[str, Any]) -> LogEntry:
        """Write the next entry (at the first free seq) and wake the readers; the entry."""
        seq = self._next if self._next is not None else await self.last_seq() + 1
        entry = LogEntry(seq, kind, data, time.time())
        while not await self.store.put_if_absent(
            self.namespace, entry_name(seq), entry.encode(), ttl=self.ttl
        ):
            seq = max(seq + 1, await self.last_seq() + 1)  # another writer took it
            entry = LogEntry(seq, kind, data, entry.at)
        self._next = seq + 1
        notify = getattr(self.store, "notify", None)
        if notify is not None:
            try:
                await notify(self.namespace, str(seq))
            except StoreUnavailable as exc:  # stored: readers find it when they poll
                logger.warning("event %s of run %s not notified: %s", seq, self.run_id, exc)
        return entry

    async def append_event(self, event: AgentEvent) -> LogEntry:
        """Log a complete event."""
        return await self.append("event", event_data(event))

    async def append_status(self, status: str, **details: Any) -> LogEntry:
        """Log a status change (``details``: error, checkpoint id...)."""
        return await self.append("status", {"status": status, **details})

    async def read(self, after: int = 0) -> list[LogEntry]:
        """Every entry with a seq above ``after``, in order."""
        entries = []
        for name, data in await self.store.scan(self.namespace, PREFIX):
            if int(name[len(PREFIX) :]) > after:
                entries.append(LogEntry.decode(data))
        return entries

    async def _get(self, seq: int) -> LogEntry | None:
        data = await self.store.get(self.namespace, entry_name(seq))
        return None if data is None else LogEntry.decode(data)

    async def follow(
        self, after: int = 0, *, poll: float = 0.05, heartbeat: float = 15.0
    ) -> AsyncIterator[LogEntry | None]:
        """The entries after ``after`` as they are written, until the run stops.

        Yields None every ``heartbeat`` seconds without an entry (SSE sends a
        comment then, so proxies keep the connection). Ends after a stopping
        status entry with nothing behind it.
        """
        async with AsyncExitStack() as stack:
            subscription = await self._subscribe(stack)
            last, stopped = after, False
            for caught_up in await self.read(after):
                yield caught_up
                last, stopped = caught_up.seq, caught_up.stops
            quiet = 0.0
            while True:
                entry = await self._get(last + 1)
                if entry is not None:
                    yield entry
                    last, stopped, quiet = entry.seq, entry.stops, 0.0
                    continue
                if stopped:
                    return
                await _wait(subscription, poll)
                quiet += poll
                if quiet >= heartbeat:
                    quiet = 0.0
                    yield None

    async def _subscribe(self, stack: AsyncExitStack) -> Subscription | None:
        subscribe = getattr(self.store, "subscribe", None)
        if subscribe is None:
            return None
        try:
            subscription: Subscription = await stack.enter_async_context(subscribe(self.namespace))
        except StoreUnavailable as exc:
            logger.warning("events of run %s: cannot subscribe, polling: %s", self.run_id, exc)
            return None
        return subscription


async def _wait(subscription: Subscription | None, seconds: float) -> None:
    if subscription is None:
        await anyio.sleep(seconds)
        return
    try:
        await subscription.wait(seconds)
    except StoreUnavailable:  # lost: poll for the rest of this stream
        await anyio.sleep(seconds)
