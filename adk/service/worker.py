"""Worker: an ``adk worker`` process, executing the service's runs taken from a RedisQueue.

A deployment runs one server (``adk serve``) and N workers (``adk worker``)
built from the same module: the same :class:`~adk.service.Service`, whose
``queue`` is a :class:`~adk.service.redis_queue.RedisQueue`. The server
records runs and submits jobs; each worker takes jobs from the lanes where
it has room and executes them with :func:`~adk.service.execution.execute_job`,
which works from the store alone (so any worker can take any job, and a job
delivered twice does nothing the second time).

While a job executes its worker renews the job's lease; when the run stops
(completed, failed, cancelled, interrupted, paused) the job is acknowledged.
A failed run is retried by the queue's :class:`RunRetry` policy: resumed
from its journal after a backoff, as the ``retry`` signal would. A worker
killed with SIGKILL stops renewing: after the lease another worker takes its
jobs and resumes their runs from their journals, so no completed call runs
twice. SIGTERM (and SIGINT) drains: no new jobs, running ones finish (up to
``drain_timeout``, after which they are left to the other workers' lease
takeover).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
from collections import Counter
from typing import TYPE_CHECKING

import anyio
import anyio.abc

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.service.redis_queue import Delivery, RedisQueue
from adk.state.lease import RunInProgress

if TYPE_CHECKING:
    from adk.service.service import Service

logger = logging.getLogger("adk.service.worker")

ACKED = frozenset({"completed", "failed", "cancelled", "interrupted", "paused", "missing"})
"""Statuses at which a job is done (``missing``: the run's records are gone)."""


class Worker:
    """Executes ``service``'s runs from ``queue`` (default: ``service.queue``), ``concurrency``
    at once (and each agent within its lane of the queue).

    ``stats`` counts outcomes by status (plus ``retried``, ``requeued``, ``errors``);
    :meth:`stop` starts a graceful drain.
    """

    def __init__(
        self,
        service: Service,
        queue: RedisQueue | None = None,
        *,
        concurrency: int = 8,
        drain_timeout: float = 60.0,
        name: str | None = None,
    ) -> None:
        from adk.service.service import Service

        if not isinstance(service, Service):
            raise ArgumentTypeError(f"Worker service must be a Service, got {service!r}")
        chosen = queue if queue is not None else service.queue
        if not isinstance(chosen, RedisQueue):
            raise ConfigurationError(
                "Worker needs a RedisQueue: give Service(queue=RedisQueue(url)) or "
                f"Worker(queue=...), got {type(chosen).__name__}"
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int):
            raise ArgumentTypeError(f"Worker concurrency must be an int, got {concurrency!r}")
        if concurrency < 1:
            raise ConfigurationError(f"Worker concurrency must be >= 1, got {concurrency}")
        if isinstance(drain_timeout, bool) or not isinstance(drain_timeout, int | float):
            raise ArgumentTypeError(f"Worker drain_timeout must be a number, got {drain_timeout!r}")
        self.service = service
        self.queue = chosen
        self.concurrency = concurrency
        self.drain_timeout = float(drain_timeout)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-{os.urandom(3).hex()}"
        self.stats: Counter[str] = Counter()
        self._running: dict[str, Delivery] = {}
        self._by_agent: Counter[str] = Counter()
        self._changed = anyio.Event()
        self._stopping = anyio.Event()

    @property
    def running(self) -> int:
        """Jobs executing now."""
        return len(self._running)

    def stop(self) -> None:
        """Take no more jobs; :meth:`run` returns once the running ones finished."""
        self._stopping.set()

    def room(self) -> dict[str, int]:
        """Free slots per agent: the lane's room, capped by the worker's."""
        free = self.concurrency - len(self._running)
        return {
            agent: max(0, min(free, self.queue.lane_limit(agent) - self._by_agent[agent]))
            for agent in self.service.agents
        }

    async def run(self, *, handle_signals: bool = False) -> None:
        """Take and execute jobs until :meth:`stop` (or SIGTERM/SIGINT with ``handle_signals``)."""
        logger.info("worker %s: started (concurrency %d)", self.name, self.concurrency)
        try:
            async with anyio.create_task_group() as jobs:
                async with anyio.create_task_group() as loops:
                    if handle_signals:
                        loops.start_soon(self._signals, loops.cancel_scope)
                    loops.start_soon(self._housekeeping, jobs)
                    await self._take(jobs)
                    loops.cancel_scope.cancel()
                with anyio.move_on_after(self.drain_timeout):
                    while self._running:
                        await self._wait_change(1.0)
                if self._running:
                    logger.warning(
                        "worker %s: %d jobs left running after the drain; their leases "
                        "will expire and other workers resume them",
                        self.name,
                        len(self._running),
                    )
                jobs.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.queue.close()
        logger.info("worker %s: stopped (%s)", self.name, dict(self.stats))

    async def _signals(self, scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            async for number in received:
                logger.info("worker %s: signal %d, draining", self.name, number)
                self.stop()
                return

    async def _wait_change(self, seconds: float) -> None:
        with anyio.move_on_after(seconds):
            await self._changed.wait()
        if self._changed.is_set():
            self._changed = anyio.Event()

    async def _take(self, jobs: anyio.abc.TaskGroup) -> None:
        """Read new jobs while the worker has room, until stopped."""
        while not self._stopping.is_set():
            room = self.room()
            if not any(room.values()):
                await self._wait_change(0.5)
                continue
            try:
                taken = await self.queue.take(self.name, room, block=0.25)
            except Exception as exc:  # Redis away: try again shortly
                logger.warning("worker %s: cannot read the queue: %r", self.name, exc)
                self.stats["errors"] += 1
                await anyio.sleep(1.0)
                continue
            for delivery in taken:
                await self._accept(jobs, delivery)

    async def _accept(self, jobs: anyio.abc.TaskGroup, delivery: Delivery) -> None:
        """Start a job taken from the queue, or give it back (stopping, or no room left:
        one read can bring a job from each lane with room)."""
        if delivery.entry in self._running:
            return  # reclaimed from ourselves: already executing here
        room = self.room().get(delivery.job.agent, 0)
        if self._stopping.is_set() or room <= 0:
            self.stats["requeued"] += 1
            await self.queue.requeue(delivery)
            return
        self._start(jobs, delivery)

    def _start(self, jobs: anyio.abc.TaskGroup, delivery: Delivery) -> None:
        self._running[delivery.entry] = delivery
        self._by_agent[delivery.job.agent] += 1
        jobs.start_soon(self._execute, delivery)

    async def _housekeeping(self, jobs: anyio.abc.TaskGroup) -> None:
        """Renew leases, take over dead workers' jobs, release delayed jobs that are due."""
        tick = min(1.0, self.queue.lease / 3)
        while True:
            await anyio.sleep(tick)
            try:
                await self.queue.promote()
                for entry, delivery in list(self._running.items()):
                    if not await self.queue.renew(delivery, self.name):
                        logger.warning("worker %s: lost the lease of job %s", self.name, entry)
                if not self._stopping.is_set():
                    for delivery in await self.queue.reclaim(self.name, self.room()):
                        self.stats["reclaimed"] += 1
                        await self._accept(jobs, delivery)
            except Exception as exc:
                logger.warning("worker %s: housekeeping failed: %r", self.name, exc)
                self.stats["errors"] += 1

    async def _execute(self, delivery: Delivery) -> None:
        from adk.service.execution import execute_job

        job = delivery.job
        try:
            try:
                status = await execute_job(self.service, job)
            except RunInProgress:  # another live executor holds the run: look again later
                self.stats["requeued"] += 1
                await self.queue.requeue(delivery, delay=min(1.0, self.queue.lease / 2))
                return
            except Exception as exc:
                await self._failed_job(delivery, exc)
                return
            self.stats[status] += 1
            if status == "failed":
                await self._retry(delivery)
            await self.queue.ack(delivery)
        finally:
            self._running.pop(delivery.entry, None)
            self._by_agent[job.agent] -= 1
            self._changed.set()

    async def _retry(self, delivery: Delivery) -> None:
        """Continue a failed run from its journal after the policy's backoff, if attempts remain."""
        from adk.service import runs
        from adk.service.errors import ServiceError

        job = delivery.job
        delay = self.queue.retry.delay(job.attempt)
        if delay is None:
            return
        try:
            with self.queue.delayed(delay, job.attempt + 1):
                await runs.signal(self.service, job.workspace, job.run_id, "retry", {})
        except ServiceError as exc:  # someone retried or cancelled it first
            logger.info("run %s not retried: %s", job.run_id, exc)
            return
        self.stats["retried"] += 1

    async def _failed_job(self, delivery: Delivery, exc: Exception) -> None:
        """``execute_job`` itself failed (the store is away...): the job again later, or dropped."""
        job = delivery.job
        self.stats["errors"] += 1
        delay = self.queue.retry.delay(job.attempt)
        logger.warning(
            "worker %s: run %s (workspace %s) failed to execute: %r%s",
            self.name,
            job.run_id,
            job.workspace,
            exc,
            "" if delay is None else f"; again in {delay:g} s",
        )
        if delay is None:
            await self.queue.ack(delivery)
            return
        from dataclasses import replace

        await self.queue.requeue(
            Delivery(delivery.stream, delivery.entry, replace(job, attempt=job.attempt + 1)),
            delay=delay,
        )
