"""SharedRoutingState: the serving layer's routing record shared by many processes, in Redis.

A :class:`~adk.serving.ServingLayer` routes on what it recorded itself: which
prompt blocks it sent to which replica (a mirror of each engine's prefix
cache) and how many calls each replica has in flight. N worker processes
sharing the same engines each see only their own traffic: one believes a
replica holds a prefix another's traffic has long evicted, and all of them
pile onto the replica each thinks idle. Given a ``SharedRoutingState``, every
layer routes on the figures of all of them:

- *prefix*: one LRU record of blocks per replica (a Redis sorted set scored
  by a shared clock, trimmed to the engine's capacity), written when a call
  is routed and read, for the call's blocks, when the next one is routed. The
  blocks are hashed with BLAKE2b, stable across processes (the layer's own
  fingerprints use Python's per-process ``hash``);
- *load*: each process publishes its own in-flight and routed counts per
  replica (a hash per process, expiring ``ttl`` seconds after its last
  write, so a dead process stops counting); a view sums the others' with the
  process's own live figures.

Routing reads one snapshot per call (one Lua script, one round trip) before
it queues, and writes once when routed and once when answered. Any policy
works unchanged: it is handed replicas whose figures are the shared ones.
If Redis cannot be reached, calls are routed on the local record (and a
warning logged): sharing is an optimisation, never a new way to fail.

Opt in with ``ServingLayer(..., shared_state=SharedRoutingState(url))``;
it needs the ``redis`` extra and an asyncio event loop (redis-py's client).
The single-process default neither imports nor needs any of this.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.serving.prefix import BLOCK_CHARS, Fingerprint, prompt_text

if TYPE_CHECKING:
    from adk.models.base import ModelRequest
    from adk.serving.replica import Replica
    from adk.serving.runtime import BackendRuntime

logger = logging.getLogger("adk.serving")

_VIEW = """
local ns, me = ARGV[1], ARGV[2]
local now, ttl, n = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local workers = redis.call('ZRANGEBYSCORE', ns .. ':workers', now - ttl, '+inf')
local out = {}
for i = 1, n do
  local label = ARGV[5 + i]
  local key = ns .. ':prefix:' .. label
  local match = 0
  for j = 6 + n, #ARGV do
    if redis.call('ZSCORE', key, ARGV[j]) then match = match + 1 else break end
  end
  local flight, routed = 0, 0
  for _, w in ipairs(workers) do
    if w ~= me then
      local v = redis.call('HGET', ns .. ':load:' .. w, label)
      if v then
        local cut = string.find(v, ' ', 1, true)
        flight = flight + tonumber(string.sub(v, 1, cut - 1))
        routed = routed + tonumber(string.sub(v, cut + 1))
      end
    end
  end
  out[#out + 1] = match
  out[#out + 1] = flight
  out[#out + 1] = routed
end
return out
"""
_ROUTED = """
local ns, label, capacity, count = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local key = ns .. ':prefix:' .. label
local clock = redis.call('INCRBY', ns .. ':clock', count)
local batch = {}
for p = 1, count do
  batch[#batch + 1] = clock - p + 1
  batch[#batch + 1] = ARGV[4 + p]
  if #batch >= 1000 then redis.call('ZADD', key, unpack(batch)); batch = {} end
end
if #batch > 0 then redis.call('ZADD', key, unpack(batch)) end
redis.call('ZREMRANGEBYRANK', key, 0, -(capacity + 1))
return clock
"""


def stable_blocks(text: str) -> list[bytes]:
    """The chained BLAKE2b hashes of ``text``'s full blocks (the same in every process)."""
    blocks: list[bytes] = []
    chained = b""
    for start in range(0, len(text) - BLOCK_CHARS + 1, BLOCK_CHARS):
        piece = text[start : start + BLOCK_CHARS].encode("utf-8", "surrogatepass")
        chained = hashlib.blake2b(chained + piece, digest_size=8).digest()
        blocks.append(chained)
    return blocks


@dataclass(frozen=True)
class SharedView:
    """One call's snapshot: per replica index, blocks matched, others' in-flight and routed."""

    blocks: tuple[bytes, ...]
    match: dict[int, int]
    in_flight: dict[int, int]
    requests: dict[int, int]


class _SharedPrefix:
    """Stands in for a replica's PrefixIndex: the shared match of this call."""

    __slots__ = ("matched",)

    def __init__(self, matched: int) -> None:
        self.matched = matched

    def match(self, fp: Fingerprint) -> int:
        return min(self.matched, len(fp.blocks))


class SharedReplica:
    """A replica as a routing policy sees it under shared state: its own identity and limits,
    the cluster's load and prefix record (see :meth:`SharedRoutingState.view`)."""

    __slots__ = ("_others_flight", "_others_requests", "prefix", "replica")

    def __init__(self, replica: Replica, view: SharedView) -> None:
        self.replica = replica
        self._others_flight = view.in_flight.get(replica.index, 0)
        self._others_requests = view.requests.get(replica.index, 0)
        self.prefix = _SharedPrefix(view.match.get(replica.index, 0))

    @property
    def in_flight(self) -> int:
        """Calls in flight on this replica from every process."""
        return self.replica.in_flight + self._others_flight

    @property
    def requests(self) -> int:
        """Calls routed to this replica by every process."""
        return self.replica.requests + self._others_requests

    def __getattr__(self, name: str) -> Any:
        return getattr(self.replica, name)


class SharedRoutingState:
    """The routing record of every process using ``redis_url`` and ``namespace`` (module doc).

    - ``namespace``: key prefix; processes routing to the same engines share one;
    - ``ttl``: seconds a process's published load counts after its last write.
    """

    def __init__(
        self, redis_url: str, *, namespace: str = "adk:routing", ttl: float = 30.0
    ) -> None:
        if not isinstance(redis_url, str) or not redis_url:
            raise ArgumentTypeError(
                f"SharedRoutingState redis_url must be a str, got {redis_url!r}"
            )
        if not isinstance(namespace, str) or not namespace:
            raise ArgumentTypeError(
                f"SharedRoutingState namespace must be a str, got {namespace!r}"
            )
        if isinstance(ttl, bool) or not isinstance(ttl, int | float):
            raise ArgumentTypeError(f"SharedRoutingState ttl must be a number, got {ttl!r}")
        if ttl <= 0:
            raise ConfigurationError(f"SharedRoutingState ttl must be > 0, got {ttl!r}")
        self.redis_url = redis_url
        self.namespace = namespace
        self.ttl = float(ttl)
        self.process = f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        """This process's name in the load record."""
        self.failures = 0
        """Reads or writes that failed (the call was routed on the local record)."""
        self._client: Any = None
        self._loop: object = None

    def _redis(self) -> Any:
        import asyncio

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            import redis.asyncio as aioredis

            self._client = aioredis.Redis.from_url(self.redis_url)
            self._loop = loop
        return self._client

    def _ns(self, backend: str) -> str:
        return f"{self.namespace}:{backend}"

    async def view(self, runtime: BackendRuntime, request: ModelRequest) -> SharedView | None:
        """The shared figures for routing ``request`` (None: Redis failed, route locally)."""
        replicas = runtime.replicas
        blocks = tuple(stable_blocks(prompt_text(request)[0]))
        args: list[Any] = [self._ns(runtime.name), self.process, time.time(), self.ttl]
        args += [len(replicas), *(r.label for r in replicas), *blocks]
        try:
            raw = await self._redis().eval(_VIEW, 0, *args)
        except Exception as exc:
            self._failed("read", exc)
            return None
        figures = [int(value) for value in raw]
        match, flight, routed = {}, {}, {}
        for position, replica in enumerate(replicas):
            match[replica.index], flight[replica.index], routed[replica.index] = figures[
                3 * position : 3 * position + 3
            ]
        return SharedView(blocks, match, flight, routed)

    def wrap(self, replicas: Sequence[Replica], view: SharedView) -> list[Replica]:
        """``replicas`` with the shared figures, for a routing policy (each a
        :class:`SharedReplica`, which reads like a Replica; ``.replica`` is the real one)."""
        return cast("list[Replica]", [SharedReplica(replica, view) for replica in replicas])

    async def routed(self, runtime: BackendRuntime, replica: Replica, view: SharedView) -> None:
        """Record that ``view``'s call went to ``replica`` (its blocks, this process's load)."""
        ns = self._ns(runtime.name)
        capacity = replica.prefix.capacity_blocks
        try:
            redis = self._redis()
            async with redis.pipeline(transaction=False) as pipe:
                if view.blocks:
                    pipe.eval(
                        _ROUTED, 0, ns, replica.label, capacity, len(view.blocks), *view.blocks
                    )
                self._load_commands(pipe, ns, runtime.replicas)
                await pipe.execute()
        except Exception as exc:
            self._failed("write", exc)

    async def publish(self, runtime: BackendRuntime) -> None:
        """Publish this process's load on ``runtime``'s replicas (after a call ended)."""
        try:
            async with self._redis().pipeline(transaction=False) as pipe:
                self._load_commands(pipe, self._ns(runtime.name), runtime.replicas)
                await pipe.execute()
        except Exception as exc:
            self._failed("write", exc)

    def _load_commands(self, pipe: Any, ns: str, replicas: Sequence[Replica]) -> None:
        key = f"{ns}:load:{self.process}"
        pipe.hset(key, mapping={r.label: f"{r.in_flight} {r.requests}" for r in replicas})
        pipe.expire(key, max(1, int(self.ttl)))
        pipe.zadd(f"{ns}:workers", {self.process: time.time()})

    def _failed(self, what: str, exc: Exception) -> None:
        self.failures += 1
        if self.failures == 1 or self.failures % 1000 == 0:
            logger.warning(
                "shared routing state: %s failed (%d so far), routing on the local record: %r",
                what,
                self.failures,
                exc,
            )

    async def reset(self, backend: str) -> None:
        """Forget everything recorded for ``backend`` (the engines' caches were emptied)."""
        redis = self._redis()
        keys = [key async for key in redis.scan_iter(match=f"{self._ns(backend)}:*")]
        if keys:
            await redis.delete(*keys)

    async def aclose(self) -> None:
        """Close the connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
