"""One model call through a backend: canonical form, cache decision, queue, route, send, measure.

The :class:`~adk.serving.layer.ServingLayer` owns configuration and metrics;
a :class:`Dispatcher` carries out each call, failing over between replicas
and recording every attempt.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import replace

import anyio

from adk.errors import (
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelServerError,
    ModelTimeoutError,
)
from adk.messages import Usage
from adk.models.base import ModelChunk, ModelRequest, ModelResponse
from adk.serving.cache import CacheDecision
from adk.serving.contexts import ContextTracker
from adk.serving.engines import EngineClient
from adk.serving.flushing import CacheKeeper
from adk.serving.metrics import CallMetrics
from adk.serving.prefix import (
    BLOCK_CHARS,
    CHARS_PER_TOKEN,
    canonical_request,
    fingerprint_text,
    prompt_text,
)
from adk.serving.replica import Replica
from adk.serving.routing import RouteRequest
from adk.serving.runtime import BackendRuntime
from adk.serving.scheduler import BackendUnavailableError

logger = logging.getLogger("adk.serving")

_REPLICA_FAULTS = (ModelConnectionError, ModelTimeoutError, ModelServerError)
"""Failures that count against a replica's health."""

_FAILOVER_ERRORS = (ModelConnectionError, ModelTimeoutError, ModelServerError, ModelRateLimitError)
"""Failures another replica may not have: the call moves on if it has not answered yet."""


class Dispatcher:
    """Carries out calls for a serving layer, sharing its context record, flusher and engines."""

    def __init__(
        self,
        contexts: ContextTracker,
        keeper: CacheKeeper,
        engines: EngineClient,
        record: Callable[[CallMetrics], None],
        stable_prefixes: bool,
    ) -> None:
        self.contexts = contexts
        self.keeper = keeper
        self.engines = engines
        self.record = record
        self.stable_prefixes = stable_prefixes

    async def call(
        self, runtime: BackendRuntime, request: ModelRequest, *, streaming: bool
    ) -> AsyncGenerator[ModelChunk | ModelResponse, None]:
        """Make one call through ``runtime``: a response, or the chunks of a stream."""
        sent = canonical_request(request) if self.stable_prefixes else request
        text, static = prompt_text(sent)
        fp = fingerprint_text(text, static)
        broke = self.contexts.prefix_break(sent, fp, text)
        del text
        config = runtime.config
        context, decision, flushes = self.contexts.begin(sent, config.name, config.model, fp)
        await self.keeper.flush_all(flushes)
        owner = context.owner
        home = context.replica
        call = RouteRequest(
            sent.run_id,
            sent.session_id,
            sent.agent_name,
            fp,
            sent.priority,
            home.index if home is not None and home.backend == runtime.name else None,
        )
        sent = runtime.marked(sent)
        avoid: set[int] = set()
        resets: set[int] = set()
        last_error: ModelError | None = None
        attempts = 0
        replica: Replica | None = None
        done = False
        try:
            while True:
                attempts += 1
                await runtime.revive(self.engines)
                try:
                    replica, waited = await runtime.queue.acquire(
                        runtime.chooser(call, avoid), sent.priority
                    )
                except BackendUnavailableError as exc:
                    if last_error is not None:
                        raise exc from last_error
                    raise
                expected = replica.prefix.match(fp) * BLOCK_CHARS // CHARS_PER_TOKEN
                replica.prefix.insert(fp, owner)
                slot = replica.take_slot(owner, fp) if runtime.spec.slot_erase else None
                outgoing = replace(sent, params=runtime.params_for(sent, replica, slot))
                started = time.monotonic()
                first: float | None = None
                yielded = False
                response: ModelResponse | None = None
                try:
                    if streaming:
                        usage: Usage | None = None
                        has_calls = False
                        chunks = replica.model.stream(outgoing)
                        try:
                            async for chunk in chunks:
                                if first is None and (chunk.content or chunk.tool_calls):
                                    first = time.monotonic()
                                usage = chunk.usage or usage
                                has_calls = has_calls or bool(chunk.tool_calls)
                                yielded = True
                                yield chunk
                        finally:
                            await _close(chunks)
                        done = not has_calls
                    else:
                        response = await replica.model.generate(outgoing)
                        usage = response.usage
                        done = not response.message.tool_calls
                except ModelError as exc:
                    last_error = exc
                    again = self._after_failure(exc, runtime, replica, avoid, yielded, resets)
                    if again == "same":
                        resets.add(replica.index)
                    replica.prefix.release(owner, drop=True)
                    self.record(
                        self._metrics(
                            sent,
                            runtime,
                            replica,
                            waited,
                            started,
                            first,
                            None,
                            decision,
                            broke and again is None,
                            expected,
                            attempts,
                            error=f"{type(exc).__name__}: {exc}",
                            failed_over=again is not None,
                        )
                    )
                    if again is not None:
                        logger.warning("%s failed, trying again: %s", replica.label, exc)
                        continue
                    raise
                finally:
                    if slot is not None:
                        replica.free_slot(slot)
                    runtime.queue.release(replica)
                replica.succeeded()
                if response is not None:
                    yield response
                self.record(
                    self._metrics(
                        sent,
                        runtime,
                        replica,
                        waited,
                        started,
                        first,
                        usage,
                        decision,
                        broke,
                        expected,
                        attempts,
                        flushed=tuple(f"{c.label}: {v.reason}" for c, v in flushes),
                    )
                )
                await self.keeper.after_call(runtime, replica)
                return
        finally:
            self.contexts.end(context, replica, fp, done)

    def _after_failure(
        self,
        exc: ModelError,
        runtime: BackendRuntime,
        replica: Replica,
        avoid: set[int],
        yielded: bool,
        resets: set[int],
    ) -> str | None:
        """Note a failed attempt; where to try next: ``"same"`` replica, ``"other"``, or None.

        A refused connection takes the replica out of routing at once. A connection
        that broke without being refused (typically a pooled keep-alive connection the
        server had just closed) is retried once on the same replica before it counts.
        A rejected request (400, auth, context window) says nothing about the
        replica's health, a rate limit only about its load. Nothing is retried once
        text has streamed.
        """
        connection = isinstance(exc, ModelConnectionError)
        refused = connection and _refused(exc)
        if connection and not refused and replica.index not in resets and not yielded:
            return "same"
        if isinstance(exc, _REPLICA_FAULTS):
            replica.failed(unreachable=refused, probe_interval=runtime.config.probe_interval)
        avoid.add(replica.index)
        if yielded or not isinstance(exc, _FAILOVER_ERRORS):
            return None
        more = any(r.index not in avoid and r.routable for r in runtime.replicas)
        return "other" if more else None

    def _metrics(
        self,
        request: ModelRequest,
        runtime: BackendRuntime,
        replica: Replica,
        waited: float,
        started: float,
        first: float | None,
        usage: Usage | None,
        decision: CacheDecision,
        broke: bool,
        expected: int,
        attempts: int,
        *,
        error: str | None = None,
        flushed: tuple[str, ...] = (),
        failed_over: bool = False,
    ) -> CallMetrics:
        ended = time.monotonic()
        usage = usage or Usage()
        ttft = (first if first is not None else ended) - started
        tpot = None
        if first is not None and usage.completion_tokens > 1:
            tpot = (ended - first) / (usage.completion_tokens - 1)
        cost = runtime.config.cost.of(usage) if runtime.config.cost is not None else None
        return CallMetrics(
            call_id=request.call_id,
            run_id=request.run_id,
            session_id=request.session_id,
            agent=request.agent_name,
            stage=request.stage or request.agent_name,
            backend=runtime.name,
            replica=replica.label,
            queue_wait=waited,
            latency=ended - started,
            ttft=ttft if error is None else None,
            tpot=tpot,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            completion_tokens=usage.completion_tokens,
            cost=cost,
            cache=str(decision),
            prefix_break=broke,
            expected_cached_tokens=expected,
            attempts=attempts,
            error=error,
            flushed=flushed,
            failed_over=failed_over,
        )


_REFUSED = (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH)


def _refused(exc: BaseException) -> bool:
    """True if a connection to the server could not be opened at all (it is down)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        if isinstance(current, OSError) and current.errno in _REFUSED:
            return True
        if "connect call failed" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


async def _close(stream: object) -> None:
    """Close a model's chunk stream now (its HTTP response), even while being cancelled."""
    close = getattr(stream, "aclose", None)
    if close is not None:
        with anyio.CancelScope(shield=True):
            await close()
