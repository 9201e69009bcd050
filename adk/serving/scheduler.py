"""Scheduling: per-replica concurrency limits and a bounded per-backend queue.

A call takes a slot on a replica right away if one is free and nobody is
waiting ahead of it; otherwise it waits in the backend's queue, in arrival
order (``fcfs``) or by priority (``priority``: higher first, arrival order
among equals). A full queue fails the call at once: backpressure instead of
an ever-growing backlog.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable, Sequence
from typing import Literal

import anyio

from adk.errors import ModelError
from adk.serving.replica import Replica


class QueueFullError(ModelError):
    """A backend's queue was full: the call was refused at once instead of waiting."""


class BackendUnavailableError(ModelError):
    """No replica of a backend can take calls (all failed their health checks)."""


Chooser = Callable[[Sequence[Replica]], Replica | None]
"""Picks a replica among those with a free slot, or None if none will do."""


class _Waiter:
    __slots__ = ("event", "key")

    def __init__(self, key: tuple[int, int]) -> None:
        self.key = key
        self.event = anyio.Event()

    def __lt__(self, other: _Waiter) -> bool:
        return self.key < other.key


class BackendQueue:
    """The queue in front of one backend's replicas."""

    def __init__(
        self,
        name: str,
        replicas: Sequence[Replica],
        capacity: int,
        order: Literal["fcfs", "priority"] = "fcfs",
    ) -> None:
        self.name = name
        self.replicas = replicas
        self.capacity = capacity
        self.order = order
        self._waiting: list[_Waiter] = []
        self._arrivals = itertools.count()
        self.max_waiting = 0
        """The longest the queue has been."""
        self.refused = 0
        """Calls refused because the queue was full."""

    @property
    def waiting(self) -> int:
        """Calls waiting for a slot now."""
        return len(self._waiting)

    async def acquire(self, choose: Chooser, priority: int = 0) -> tuple[Replica, float]:
        """Wait for a slot; returns the replica (its slot taken) and the seconds waited.

        Raises :class:`QueueFullError` at once if the call would have to wait
        and ``capacity`` calls already do.
        """
        started = time.monotonic()
        if not self._waiting:
            replica = self._try(choose)
            if replica is not None:
                return replica, 0.0
        if len(self._waiting) >= self.capacity:
            self.refused += 1
            raise QueueFullError(
                f"backend {self.name!r}: queue full ({self.capacity} calls waiting, "
                f"{sum(r.in_flight for r in self.replicas)} in flight); "
                "raise queue_capacity or max_concurrency, or slow the callers down"
            )
        rank = -priority if self.order == "priority" else 0
        waiter = _Waiter((rank, next(self._arrivals)))
        heapq.heappush(self._waiting, waiter)
        self.max_waiting = max(self.max_waiting, len(self._waiting))
        try:
            while True:
                if self._waiting[0] is waiter:
                    replica = self._try(choose)
                    if replica is not None:
                        heapq.heappop(self._waiting)
                        self._wake_next()
                        return replica, time.monotonic() - started
                await waiter.event.wait()
                waiter.event = anyio.Event()
        except BaseException:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
                heapq.heapify(self._waiting)
                self._wake_next()
            raise

    def _try(self, choose: Chooser) -> Replica | None:
        free = [r for r in self.replicas if r.free]
        if not free:
            return None
        replica = choose(free)
        if replica is not None:
            replica.in_flight += 1
            replica.requests += 1
        return replica

    def release(self, replica: Replica) -> None:
        """A call on ``replica`` ended: free its slot and let the next waiter try."""
        replica.in_flight -= 1
        self._wake_next()

    def wake(self) -> None:
        """Let the head waiter try again (a replica came back into routing)."""
        self._wake_next()

    def _wake_next(self) -> None:
        if self._waiting:
            self._waiting[0].event.set()
