"""One replica of a backend: its client, load, health, cache record and llama.cpp slots."""

from __future__ import annotations

import time
from typing import Any, Literal

from adk.models.base import ChatModel
from adk.serving.prefix import Fingerprint, PrefixIndex

Health = Literal["healthy", "degraded", "unavailable"]

DEGRADED_AFTER = 1
"""Consecutive failed calls that make a replica degraded (routed only if nothing better)."""
UNAVAILABLE_AFTER = 3
"""Consecutive failed calls that take a replica out of routing until a probe succeeds."""


class Replica:
    """A server holding a backend's model, as the layer tracks it."""

    def __init__(
        self,
        backend: str,
        index: int,
        endpoint: str | None,
        model: ChatModel,
        max_concurrency: int,
        cache_blocks: int,
        slots: int,
    ) -> None:
        self.backend = backend
        self.index = index
        self.endpoint = endpoint
        self.model = model
        self.max_concurrency = max_concurrency
        self.in_flight = 0
        self.requests = 0
        """Calls routed here so far."""
        self.failures = 0
        self.health: Health = "healthy"
        self.next_probe_at = 0.0
        self.prefix = PrefixIndex(cache_blocks)
        self.kv_usage: float | None = None
        """The engine's last reported KV-cache usage (0..1), if it reports one."""
        self.kv_read_at = float("-inf")
        self.slot_count = slots
        self._slots: dict[int, str] = {}
        self._busy_slots: set[int] = set()
        self._slot_used: dict[int, float] = {}
        self._slot_prompt: dict[int, Fingerprint] = {}
        self.flush_pending = False
        """A hard flush of the whole engine waits for this replica to go idle."""
        self.erase_pending: dict[int, str] = {}
        """llama.cpp slots to erase once idle, with the owner they must still belong to."""
        self.pending_records: list[Any] = []
        """Flush records waiting for the hard flush above."""

    @property
    def name(self) -> str:
        """``backend#index`` (and the URL), for metrics and messages."""
        return f"{self.backend}#{self.index}"

    @property
    def label(self) -> str:
        """What metrics call this replica: its URL, or the backend's name for a provider."""
        return self.endpoint or self.name

    @property
    def free(self) -> bool:
        """True if another call may start here now."""
        return self.in_flight < self.max_concurrency

    @property
    def routable(self) -> bool:
        """True unless the replica is unavailable (probes bring it back)."""
        return self.health != "unavailable"

    def probe_due(self, now: float) -> bool:
        """True if the replica is out of routing and its next probe time has come."""
        return self.health == "unavailable" and now >= self.next_probe_at

    def succeeded(self) -> None:
        """A call (or probe) worked: the replica is healthy again."""
        self.failures = 0
        self.health = "healthy"

    def failed(self, *, unreachable: bool, probe_interval: float) -> None:
        """A call failed; an unreachable replica leaves routing at once, others after a streak."""
        self.failures += 1
        if unreachable or self.failures >= UNAVAILABLE_AFTER:
            self.health = "unavailable"
            self.next_probe_at = time.monotonic() + probe_interval
        elif self.failures >= DEGRADED_AFTER:
            self.health = "degraded"

    def probe_failed(self, probe_interval: float) -> None:
        """A probe failed: stay out of routing until the next one."""
        self.health = "unavailable"
        self.next_probe_at = time.monotonic() + probe_interval

    # -- llama.cpp slots -----------------------------------------------------------------------

    def take_slot(self, owner: str, fp: Fingerprint) -> int | None:
        """A slot for ``owner``'s call with prompt ``fp``.

        Its own slot if free. Otherwise a free slot no live context holds,
        then (only if every free slot is held) another context's; among those,
        the slot whose last prompt shares the longest prefix with ``fp`` (a
        llama.cpp slot reuses only its own cache), then the least recently used.
        """
        if self.slot_count <= 0:
            return None
        for slot, holder in self._slots.items():
            if holder == owner and slot not in self._busy_slots:
                return self._occupy(slot, owner, fp)
        free = [slot for slot in range(self.slot_count) if slot not in self._busy_slots]
        if not free:
            return None

        def preference(slot: int) -> tuple[bool, int, float]:
            last = self._slot_prompt.get(slot)
            shared = fp.shared_blocks(last) if last is not None else 0
            return slot not in self._slots, shared, -self._slot_used.get(slot, 0.0)

        return self._occupy(max(free, key=preference), owner, fp)

    def _occupy(self, slot: int, owner: str, fp: Fingerprint) -> int:
        previous = self._slots.get(slot)
        if previous is not None and previous != owner:
            # The slot's cache is overwritten: that context's prompt is gone from here.
            self.prefix.release(previous, drop=True)
        self._slots[slot] = owner
        self._slot_prompt[slot] = fp
        self._busy_slots.add(slot)
        self._slot_used[slot] = time.monotonic()
        self.erase_pending.pop(slot, None)
        return slot

    def free_slot(self, slot: int) -> None:
        """The call using ``slot`` ended."""
        self._busy_slots.discard(slot)

    def slots_of(self, owner: str) -> list[int]:
        """Slots whose cache holds ``owner``'s prompt."""
        return [slot for slot, holder in self._slots.items() if holder == owner]

    def slot_owner(self, slot: int) -> str | None:
        """Whose prompt ``slot`` holds."""
        return self._slots.get(slot)

    def drop_slot(self, slot: int, *, erased: bool = False) -> None:
        """Free ``slot`` for other contexts; ``erased``: its cache is gone too."""
        self._slots.pop(slot, None)
        if erased:
            self._slot_prompt.pop(slot, None)
