"""RedisQueue: the production queue of the service, on Redis Streams consumer groups.

Why Redis Streams: a consumer group is a queue with delivery tracking built
in. ``XREADGROUP`` hands each job to one worker and keeps it in that
worker's pending list until ``XACK``; a worker that dies (kill -9) leaves
its jobs pending, and ``XAUTOCLAIM`` lets another worker take every job
idle longer than the lease. That is the whole lease protocol: no table of
locks, no polling loop of our own. Workers renew the lease on the jobs they
execute by resetting their idle time (``XCLAIM ... JUSTID``, only while the
job is still theirs).

Layout (``stream`` is the prefix, ``adk:runs`` by default):

- ``<stream>:<agent>``: one stream per agent, the *lane*. A worker reads
  only the lanes where it has room (``lanes={agent: n}``: at most n runs of
  that agent at once in one worker), so a busy agent never starves another;
- ``<stream>:lanes``: the set of lanes ever used (what :meth:`depth` sums);
- ``<stream>:delayed``: a sorted set of jobs due later (retries with
  backoff), moved to their lane atomically by a Lua script when due.

Acknowledged entries are deleted, so a lane's length is the number of jobs
waiting or executing. The server side only calls :meth:`submit` and
:meth:`depth`; :class:`~adk.service.worker.Worker` uses the rest.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.service.jobs import RunJob

_PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, member in ipairs(due) do
  if redis.call('ZREM', KEYS[1], member) == 1 then
    local cut = string.find(member, '\\n', 1, true)
    redis.call('XADD', string.sub(member, 1, cut - 1), '*', 'job', string.sub(member, cut + 1))
    moved = moved + 1
  end
end
return moved
"""
_RENEW = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
"""
_DELAY: ContextVar[tuple[float, int] | None] = ContextVar("adk_queue_delay", default=None)


@dataclass(frozen=True)
class RunRetry:
    """How a worker retries a run that failed: up to ``max_attempts`` executions in all,
    waiting ``backoff * factor ** (n - 1)`` seconds (at most ``max_delay``) before retry n.

    A retry resumes the failed run from its journal (nothing completed runs
    twice), as the ``retry`` signal does. ``max_attempts=1`` never retries.
    """

    max_attempts: int = 3
    backoff: float = 1.0
    factor: float = 2.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise ArgumentTypeError(
                f"RunRetry max_attempts must be an int, got {self.max_attempts!r}"
            )
        if self.max_attempts < 1:
            raise ConfigurationError(f"RunRetry max_attempts must be >= 1, got {self.max_attempts}")
        for name in ("backoff", "factor", "max_delay"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ArgumentTypeError(f"RunRetry {name} must be a number, got {value!r}")
            if not math.isfinite(value) or value < 0 or (name == "factor" and value < 1):
                raise ConfigurationError(f"RunRetry {name} out of range: {value!r}")

    def delay(self, attempt: int) -> float | None:
        """Seconds before execution number ``attempt + 1`` (0-based ``attempt`` just failed);
        None when no attempt is left."""
        if attempt + 1 >= self.max_attempts:
            return None
        return float(min(self.max_delay, self.backoff * self.factor**attempt))


@dataclass(frozen=True)
class Delivery:
    """A job a worker took from a lane: the stream, the entry id, the job."""

    stream: str
    entry: str
    job: RunJob


class RedisQueue:
    """A :class:`~adk.service.jobs.RunQueue` on Redis Streams (see the module docstring).

    - ``url``: the Redis server (``redis://host:6379/0``);
    - ``stream``: key prefix of the lanes; ``group``: the consumer group;
    - ``lanes``: ``{agent: n}``, the most runs of an agent one worker executes
      at once (``default_lane`` for the others);
    - ``lease``: seconds a job may go without renewal before another worker
      takes it (a worker renews every third of it while executing);
    - ``retry``: the :class:`RunRetry` policy for failed runs.
    """

    def __init__(
        self,
        url: str,
        *,
        stream: str = "adk:runs",
        group: str = "adk-workers",
        lanes: Mapping[str, int] | None = None,
        default_lane: int = 16,
        lease: float = 30.0,
        retry: RunRetry | None = None,
    ) -> None:
        for name, value in (("url", url), ("stream", stream), ("group", group)):
            if not isinstance(value, str) or not value:
                raise ArgumentTypeError(f"RedisQueue {name} must be a non-empty str, got {value!r}")
        if lanes is not None and not isinstance(lanes, Mapping):
            raise ArgumentTypeError(f"RedisQueue lanes must be a mapping, got {lanes!r}")
        for agent, limit in {**(lanes or {}), "default_lane": default_lane}.items():
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ConfigurationError(
                    f"RedisQueue lane {agent!r} must be an int >= 1, got {limit!r}"
                )
        if isinstance(lease, bool) or not isinstance(lease, int | float):
            raise ArgumentTypeError(f"RedisQueue lease must be a number, got {lease!r}")
        if not 0.1 <= lease <= 86_400:
            raise ConfigurationError(f"RedisQueue lease must be 0.1-86400 seconds, got {lease!r}")
        if retry is not None and not isinstance(retry, RunRetry):
            raise ArgumentTypeError(f"RedisQueue retry must be a RunRetry, got {retry!r}")
        self.url, self.stream, self.group = url, stream, group
        self.lanes = dict(lanes or {})
        self.default_lane = default_lane
        self.lease = float(lease)
        self.retry = retry if retry is not None else RunRetry()
        self._client: Any = None
        self._grouped: set[str] = set()

    # -- connection ---------------------------------------------------------------------

    @property
    def redis(self) -> Any:
        """The redis-py asyncio client (made on first use; needs the ``redis`` extra)."""
        if self._client is None:
            try:
                import redis.asyncio as aioredis
            except ImportError as exc:  # pragma: no cover - the extra is missing
                raise ConfigurationError(
                    "RedisQueue needs the redis extra: pip install 'adk[redis]'"
                ) from exc
            self._client = aioredis.Redis.from_url(self.url)
        return self._client

    async def close(self) -> None:
        """Close the connections."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    def lane(self, agent: str) -> str:
        """The stream of ``agent``'s lane."""
        return f"{self.stream}:{agent}"

    def lane_limit(self, agent: str) -> int:
        """The most runs of ``agent`` one worker executes at once."""
        return self.lanes.get(agent, self.default_lane)

    # -- the server's side ----------------------------------------------------------------

    async def submit(self, job: RunJob) -> None:
        """Append ``job`` to its agent's lane (or to the delayed set inside :meth:`delayed`)."""
        delay = _DELAY.get()
        if delay is not None:
            await self.submit_later(replace(job, attempt=delay[1]), delay[0])
            return
        lane = self.lane(job.agent)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(f"{self.stream}:lanes", lane)
            pipe.xadd(lane, {"job": job.to_json()})
            await pipe.execute()

    async def submit_later(self, job: RunJob, delay: float) -> None:
        """Queue ``job`` in ``delay`` seconds (it waits in the delayed set until then)."""
        lane = self.lane(job.agent)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(f"{self.stream}:lanes", lane)
            pipe.zadd(f"{self.stream}:delayed", {f"{lane}\n{job.to_json()}": time.time() + delay})
            await pipe.execute()

    @contextmanager
    def delayed(self, seconds: float, attempt: int) -> Iterator[None]:
        """Jobs submitted in this block (this task) are due in ``seconds``, marked ``attempt``."""
        token = _DELAY.set((seconds, attempt))
        try:
            yield
        finally:
            _DELAY.reset(token)

    async def depth(self) -> int:
        """Jobs waiting, delayed or executing."""
        lanes = await self.redis.smembers(f"{self.stream}:lanes")
        async with self.redis.pipeline(transaction=False) as pipe:
            for lane in lanes:
                pipe.xlen(lane)
            pipe.zcard(f"{self.stream}:delayed")
            counts = await pipe.execute()
        return int(sum(counts))

    # -- the workers' side ----------------------------------------------------------------

    async def _ensure_groups(self, lanes: Iterable[str]) -> None:
        from redis.exceptions import ResponseError

        for lane in lanes:
            if lane in self._grouped:
                continue
            try:  # from id 0: jobs submitted before any worker started are read too
                await self.redis.xgroup_create(lane, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
            self._grouped.add(lane)

    async def take(
        self, consumer: str, room: Mapping[str, int], block: float = 0.5
    ) -> list[Delivery]:
        """New jobs for ``consumer`` from the lanes with room (``{agent: free slots}``),
        waiting up to ``block`` seconds for one. Up to the largest room *per lane*: the
        caller gives back (:meth:`requeue`) what it has no room for."""
        lanes = {self.lane(agent): ">" for agent, free in room.items() if free > 0}
        if not lanes:
            return []
        await self._ensure_groups(lanes)
        count = max(room.values())
        found = await self.redis.xreadgroup(
            self.group, consumer, lanes, count=count, block=max(1, int(block * 1000))
        )
        taken: list[Delivery] = []
        for stream, entries in found or []:
            name = stream.decode() if isinstance(stream, bytes) else str(stream)
            taken.extend(self._deliveries(name, entries))
        return taken

    async def reclaim(self, consumer: str, room: Mapping[str, int]) -> list[Delivery]:
        """Jobs idle longer than the lease (their worker died) taken over by ``consumer``."""
        taken: list[Delivery] = []
        idle_ms = int(self.lease * 1000)
        for agent, free in room.items():
            if free <= 0:
                continue
            lane = self.lane(agent)
            await self._ensure_groups([lane])
            answer = await self.redis.xautoclaim(
                lane, self.group, consumer, idle_ms, start_id="0-0", count=free
            )
            taken.extend(self._deliveries(lane, answer[1]))
        return taken

    def _deliveries(self, lane: str, entries: Any) -> list[Delivery]:
        found = []
        for entry_id, fields in entries or []:
            if not fields:
                continue  # deleted meanwhile
            raw = fields.get(b"job") if b"job" in fields else fields.get("job")
            entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
            found.append(Delivery(lane, entry, RunJob.from_json(raw)))
        return found

    async def renew(self, delivery: Delivery, consumer: str) -> bool:
        """Reset the job's idle time if ``consumer`` still holds it; False if it lost it."""
        held = await self.redis.eval(
            _RENEW, 1, delivery.stream, self.group, delivery.entry, consumer
        )
        return bool(held)

    async def ack(self, delivery: Delivery) -> None:
        """The job is done: acknowledge and delete its entry."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.xack(delivery.stream, self.group, delivery.entry)
            pipe.xdel(delivery.stream, delivery.entry)
            await pipe.execute()

    async def requeue(self, delivery: Delivery, delay: float = 0.0) -> None:
        """Give the job back (now, or in ``delay`` seconds) and drop this delivery."""
        async with self.redis.pipeline(transaction=True) as pipe:
            if delay > 0:
                member = f"{delivery.stream}\n{delivery.job.to_json()}"
                pipe.zadd(f"{self.stream}:delayed", {member: time.time() + delay})
            else:
                pipe.xadd(delivery.stream, {"job": delivery.job.to_json()})
            pipe.xack(delivery.stream, self.group, delivery.entry)
            pipe.xdel(delivery.stream, delivery.entry)
            await pipe.execute()

    async def promote(self, limit: int = 100) -> int:
        """Move delayed jobs that are due to their lanes (atomically); how many."""
        moved = await self.redis.eval(_PROMOTE, 1, f"{self.stream}:delayed", time.time(), limit)
        return int(moved)

    async def clear(self) -> None:
        """Delete every key of this queue (tests, and resetting a deployment)."""
        lanes = await self.redis.smembers(f"{self.stream}:lanes")
        await self.redis.delete(*lanes, f"{self.stream}:lanes", f"{self.stream}:delayed")
        self._grouped.clear()
