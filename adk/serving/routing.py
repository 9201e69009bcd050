"""Routing policies: which replica of a backend takes a call.

A policy sees the call (its fingerprint, session, run) and the candidates:
the replicas that are in routing and have a free concurrency slot (never
empty). It returns one of them. Policies keep their own state (a
round-robin counter, a hash ring), so each backend gets its own instance.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from adk.errors import ConfigurationError
from adk.serving.prefix import BLOCK_CHARS, CHARS_PER_TOKEN, Fingerprint
from adk.serving.replica import Replica


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """What a routing policy knows about a call."""

    run_id: str
    session_id: str
    agent: str
    fingerprint: Fingerprint
    priority: int = 0
    home: int | None = None
    """Index of the replica that served this context's last call, if it continues one."""

    @property
    def affinity_key(self) -> str:
        """The key session affinity hashes: the session, else the run."""
        return self.session_id or self.run_id


@runtime_checkable
class RoutingPolicy(Protocol):
    """Chooses a replica among ``candidates`` (routable, with a free slot; never empty).

    ``replicas`` is every replica of the backend, for policies that balance
    on totals.
    """

    name: str

    def choose(
        self, call: RouteRequest, candidates: Sequence[Replica], replicas: Sequence[Replica]
    ) -> Replica:
        """The replica that takes ``call``."""
        ...


def _load_key(replica: Replica) -> tuple[float, int, int]:
    # In-flight share first (replicas may differ in size), then fewest calls so far.
    return (replica.in_flight / replica.max_concurrency, replica.requests, replica.index)


class RoundRobin:
    """Each call to the next replica in turn; ignores caches. The baseline."""

    name = "round_robin"

    def __init__(self) -> None:
        self._next = 0

    def choose(
        self, call: RouteRequest, candidates: Sequence[Replica], replicas: Sequence[Replica]
    ) -> Replica:
        count = len(replicas)
        allowed = {id(r) for r in candidates}
        for step in range(count):
            replica = replicas[(self._next + step) % count]
            if id(replica) in allowed:
                self._next = (replica.index + 1) % count
                return replica
        return candidates[0]


class LeastLoaded:
    """The replica with the fewest calls in flight (ties: fewest calls so far)."""

    name = "least_loaded"

    def choose(
        self, call: RouteRequest, candidates: Sequence[Replica], replicas: Sequence[Replica]
    ) -> Replica:
        return min(candidates, key=_load_key)


class SessionAffinity:
    """Consistent hashing of the session onto a ring of replicas, with bounded load.

    A session keeps landing on the same replica (its cache stays warm) and
    adding or losing a replica moves only the sessions that hashed to it. A
    replica already holding more than ``load_cap`` times its fair share of
    the calls in flight is skipped for the next one on the ring (consistent
    hashing with bounded loads), so one busy session cannot swamp a replica.
    """

    name = "session_affinity"

    def __init__(self, load_cap: float = 1.25, virtual_nodes: int = 64) -> None:
        if load_cap < 1:
            raise ConfigurationError("session affinity load_cap must be at least 1")
        self.load_cap = load_cap
        self.virtual_nodes = virtual_nodes
        self._ring: list[tuple[int, int]] = []
        self._ring_for: tuple[str, ...] = ()

    def _points(self, replicas: Sequence[Replica]) -> list[tuple[int, int]]:
        labels = tuple(r.label for r in replicas)
        if labels != self._ring_for:
            ring = [
                (_hash(f"{label}#{node}"), index)
                for index, label in enumerate(labels)
                for node in range(self.virtual_nodes)
            ]
            ring.sort()
            self._ring, self._ring_for = ring, labels
        return self._ring

    def choose(
        self, call: RouteRequest, candidates: Sequence[Replica], replicas: Sequence[Replica]
    ) -> Replica:
        ring = self._points(replicas)
        allowed = {r.index: r for r in candidates}
        in_flight = sum(r.in_flight for r in replicas) + 1
        cap = math.ceil(self.load_cap * in_flight / max(1, len(candidates)))
        start = bisect.bisect(ring, (_hash(call.affinity_key), -1))
        seen: set[int] = set()
        for step in range(len(ring)):
            _, index = ring[(start + step) % len(ring)]
            if index in seen:
                continue
            seen.add(index)
            replica = allowed.get(index)
            if replica is not None and replica.in_flight < cap:
                return replica
        return min(candidates, key=_load_key)


class PrefixAware:
    """To the replica most likely to hold the longest prefix of the call, within load bounds.

    The layer records which prompt blocks it sent to which replica (mirroring
    each engine's cache capacity) and where each context (one agent of one
    run) made its last call.

    - A call that continues a context goes back to the replica of its last
      call (its history is cached there), unless that replica has more than
      ``max_extra_in_flight`` calls in flight above the least busy one.
    - A new context goes to the replica holding the longest prefix of it
      *beyond the static part* (system prompt and tools, which soon sit on
      every replica and are no reason to pile work on one): the history it
      shares with earlier work, such as the previous turns of a chat or a
      plan that workers continue. The match must reach ``min_match_tokens``
      and that replica must be within the same in-flight bound.
    - Otherwise (a weak match, or the load is unbalanced) the least loaded
      replica takes it: fewest calls in flight, then fewest calls so far,
      then the one holding more of the prefix.
    - Replicas that have served more than ``balance_cap`` times the average
      number of calls plus ``balance_slack`` are passed over while others can
      take the call.
    """

    name = "prefix_aware"

    def __init__(
        self,
        *,
        min_match_tokens: int = 32,
        max_extra_in_flight: int = 8,
        balance_cap: float = 1.2,
        balance_slack: int = 4,
    ) -> None:
        self.min_match_tokens = min_match_tokens
        self.max_extra_in_flight = max_extra_in_flight
        self.balance_cap = balance_cap
        self.balance_slack = balance_slack

    def choose(
        self, call: RouteRequest, candidates: Sequence[Replica], replicas: Sequence[Replica]
    ) -> Replica:
        mean_requests = sum(r.requests for r in replicas) / len(replicas)
        request_cap = self.balance_cap * mean_requests + self.balance_slack
        eligible = [r for r in candidates if r.requests + 1 <= request_cap] or list(candidates)
        least_busy = min(r.in_flight for r in eligible)
        bound = least_busy + self.max_extra_in_flight
        if call.home is not None:
            for replica in eligible:
                if replica.index == call.home and replica.in_flight <= bound:
                    return replica
        fp = call.fingerprint
        found = {id(r): r.prefix.match(fp) for r in eligible}
        static = min(fp.static_blocks, len(fp.blocks))
        best = max(found.values())
        if (best - static) * (BLOCK_CHARS // CHARS_PER_TOKEN) >= self.min_match_tokens:
            holders = [r for r in eligible if found[id(r)] == best and r.in_flight <= bound]
            if holders:
                return min(holders, key=_load_key)
        return min(
            eligible,
            key=lambda r: (r.in_flight / r.max_concurrency, r.requests, -found[id(r)], r.index),
        )


POLICIES: dict[str, Callable[[], RoutingPolicy]] = {
    "round_robin": RoundRobin,
    "least_loaded": LeastLoaded,
    "session_affinity": SessionAffinity,
    "prefix_aware": PrefixAware,
}


def routing_policy(
    choice: str | RoutingPolicy | None, default: str = "prefix_aware"
) -> RoutingPolicy:
    """A fresh policy for a name (or ``default`` for None); a policy object is used as is."""
    if choice is None:
        choice = default
    if isinstance(choice, str):
        factory = POLICIES.get(choice)
        if factory is None:
            raise ConfigurationError(
                f"unknown routing policy {choice!r} (one of {', '.join(POLICIES)})"
            )
        return factory()
    if not isinstance(choice, RoutingPolicy):
        raise ConfigurationError(f"{choice!r} is not a routing policy (it needs name and choose)")
    return choice


def _hash(text: str) -> int:
    # Stable across processes (unlike hash()), so a session maps the same way everywhere.
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")
