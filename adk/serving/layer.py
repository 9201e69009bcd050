"""The serving layer: the one door every model call goes through.

ChatModelAgent never calls a model itself: it hands a complete
:class:`~adk.models.base.ModelRequest` to the serving layer on the run
context. A model *object* is called directly (nothing to route). A model
*name* is a configured :class:`~adk.serving.config.Backend`, or else a litellm
model id that becomes an implicit backend, so zero configuration behaves as
before. For a backend, each call is:

1. made canonical (static content first, tools in a canonical order) and
   fingerprinted; a prompt that does not extend the same agent's previous one
   counts as a prefix break;
2. judged by the cache policy at workflow boundaries (flushing contexts the
   run no longer needs);
3. queued (bounded, fcfs or priority) until a replica has a free slot, and
   routed by the backend's policy among healthy replicas;
4. sent with the engine's or provider's cache hints; a replica that fails
   before answering is marked down and the call fails over to another;
5. measured: queue wait, TTFT, TPOT, tokens, cost, cache decision.
"""

from __future__ import annotations

import errno
import logging
import time
from collections import OrderedDict, deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from contextlib import aclosing
from dataclasses import replace

import anyio

from adk.errors import (
    ConfigurationError,
    ModelConnectionError,
    ModelError,
    ModelRateLimitError,
    ModelServerError,
    ModelTimeoutError,
)
from adk.messages import Usage
from adk.models.base import ChatModel, ModelChunk, ModelRequest, ModelResponse
from adk.serving.cache import CacheDecision, CachePolicy
from adk.serving.config import Backend
from adk.serving.contexts import ContextTracker, owner_of
from adk.serving.engines import EngineClient
from adk.serving.flushing import CacheKeeper
from adk.serving.metrics import CallMetrics, RunServingStats, ServingSummary
from adk.serving.prefix import (
    BLOCK_CHARS,
    CHARS_PER_TOKEN,
    canonical_request,
    fingerprint_text,
    prompt_text,
)
from adk.serving.replica import Replica
from adk.serving.routing import RouteRequest, RoutingPolicy
from adk.serving.runtime import BackendRuntime
from adk.serving.scheduler import BackendUnavailableError

logger = logging.getLogger("adk.serving")

CallListener = Callable[[CallMetrics], None]

_REPLICA_FAULTS = (ModelConnectionError, ModelTimeoutError, ModelServerError)
"""Failures that count against a replica's health."""

_FAILOVER_ERRORS = (ModelConnectionError, ModelTimeoutError, ModelServerError, ModelRateLimitError)
"""Failures another replica may not have: the call moves on if it has not answered yet."""


class ServingLayer:
    """Routes, schedules, caches and measures model calls.

    - ``backends``: named :class:`Backend` configurations.
    - ``routing``: the default routing policy for backends that set none
      (``"prefix_aware"``).
    - ``cache``: the workflow :class:`CachePolicy` (default: preserve on small
      increments, flush at boundaries, on completion and under pressure).
    - ``stable_prefixes``: send requests in canonical form (default True).
    - ``on_call``: functions called with each call's :class:`CallMetrics`.
    - ``keep_calls``: how many recent calls :meth:`summary` aggregates.
    """

    def __init__(
        self,
        backends: Iterable[Backend] = (),
        *,
        routing: str | RoutingPolicy | None = None,
        cache: CachePolicy | None = None,
        stable_prefixes: bool = True,
        on_call: CallListener | Iterable[CallListener] | None = None,
        keep_calls: int = 100_000,
    ) -> None:
        self.routing = routing if routing is not None else "prefix_aware"
        self.cache_policy = cache if cache is not None else CachePolicy()
        self.stable_prefixes = stable_prefixes
        self._runtimes: dict[str, BackendRuntime] = {}
        self._named: dict[str, ChatModel] = {}
        for backend in backends:
            self.add_backend(backend)
        self._listeners: list[CallListener] = (
            [] if on_call is None else [on_call] if callable(on_call) else list(on_call)
        )
        self._contexts = ContextTracker(self.cache_policy)
        self._engines = EngineClient()
        self._calls: deque[CallMetrics] = deque(maxlen=keep_calls)
        self._by_run: OrderedDict[str, list[CallMetrics]] = OrderedDict()
        self._keeper = CacheKeeper(self._engines, self._contexts, self.cache_policy, self._runtimes)
        self.flushes = self._keeper.records
        """Recent flush decisions (:class:`FlushRecord`), newest last."""

    # -- configuration ---------------------------------------------------------------------------

    def add_backend(self, backend: Backend) -> None:
        """Register ``backend`` under its name."""
        if backend.name in self._runtimes:
            raise ConfigurationError(f"two backends are named {backend.name!r}")
        self._runtimes[backend.name] = BackendRuntime(backend, self.routing)

    def add_listener(self, listener: CallListener) -> None:
        """Call ``listener`` with the metrics of every call from now on."""
        self._listeners.append(listener)

    @property
    def backends(self) -> dict[str, Backend]:
        """The backends, configured and implicit, by name."""
        return {name: runtime.config for name, runtime in self._runtimes.items()}

    def replicas(self, backend: str) -> list[Replica]:
        """The live state of ``backend``'s replicas (load, health, cache record)."""
        return list(self._known(backend).replicas)

    def queue_stats(self, backend: str) -> dict[str, int]:
        """``backend``'s queue: calls waiting now, the most that ever waited, calls refused."""
        queue = self._known(backend).queue
        return {
            "waiting": queue.waiting,
            "max_waiting": queue.max_waiting,
            "refused": queue.refused,
        }

    def _known(self, name: str) -> BackendRuntime:
        runtime = self._runtimes.get(name)
        if runtime is None:
            known = ", ".join(sorted(self._runtimes)) or "none yet"
            raise ConfigurationError(f"no backend named {name!r} (known: {known})")
        return runtime

    def _runtime(self, name: str) -> BackendRuntime:
        runtime = self._runtimes.get(name)
        if runtime is None:
            # A bare litellm model id: an implicit backend with no limits of its own.
            backend = Backend(name=name, model=name, kind="litellm", max_concurrency=1_000_000)
            runtime = self._runtimes[name] = BackendRuntime(backend, self.routing)
        return runtime

    def resolve(self, model: ChatModel | str) -> ChatModel:
        """The model object behind ``model`` (a backend's first replica for a name)."""
        if not isinstance(model, str):
            return model
        return self._runtime(model).replicas[0].model

    # -- calls -----------------------------------------------------------------------------------

    async def generate(self, model: ChatModel | str, request: ModelRequest) -> ModelResponse:
        """Return the complete answer of ``model`` to ``request``."""
        if not isinstance(model, str):
            return await model.generate(request)
        response: ModelResponse | None = None
        async with aclosing(self._call(self._runtime(model), request, streaming=False)) as items:
            async for item in items:
                assert isinstance(item, ModelResponse)
                response = item
        assert response is not None
        return response

    def stream(self, model: ChatModel | str, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        """Stream the answer of ``model`` to ``request``."""
        if not isinstance(model, str):
            return model.stream(request)
        return self._stream(self._runtime(model), request)

    async def _stream(
        self, runtime: BackendRuntime, request: ModelRequest
    ) -> AsyncIterator[ModelChunk]:
        # aclosing: a consumer that stops early must free the replica's slot now, not
        # whenever the garbage collector finalises the abandoned generators.
        async with aclosing(self._call(runtime, request, streaming=True)) as items:
            async for item in items:
                assert isinstance(item, ModelChunk)
                yield item

    async def _call(
        self, runtime: BackendRuntime, request: ModelRequest, *, streaming: bool
    ) -> AsyncGenerator[ModelChunk | ModelResponse, None]:
        sent = canonical_request(request) if self.stable_prefixes else request
        text, static = prompt_text(sent)
        fp = fingerprint_text(text, static)
        broke = self._contexts.prefix_break(sent, fp, text)
        del text
        config = runtime.config
        context, decision, flushes = self._contexts.begin(sent, config.name, config.model, fp)
        await self._keeper.flush_all(flushes)
        owner = owner_of(sent)
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
                await runtime.revive(self._engines)
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
                    self._record(
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
                self._record(
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
                await self._keeper.after_call(runtime, replica)
                return
        finally:
            self._contexts.end(context, replica, fp, done)

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
        now = time.monotonic()
        more = any(r.index not in avoid and r.routable(now) for r in runtime.replicas)
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

    def _record(self, metrics: CallMetrics) -> None:
        self._calls.append(metrics)
        if metrics.run_id:
            calls = self._by_run.get(metrics.run_id)
            if calls is None:
                calls = self._by_run[metrics.run_id] = []
                if len(self._by_run) > 10_000:
                    self._by_run.popitem(last=False)
            calls.append(metrics)
        for listener in self._listeners:
            try:
                listener(metrics)
            except Exception:
                logger.exception("serving metrics listener %r failed", listener)

    async def run_finished(self, run_id: str, status: str = "finished") -> None:
        """A run ended (``"finished"``, ``"failed"``) or paused (``"paused"``).

        Finished and failed runs have their contexts judged (flush on
        complete by default); a paused run keeps them, as an idle run that
        pressure may evict.
        """
        if status == "paused" or not self._runtimes:
            return
        decided = self._contexts.finish_run(run_id)
        await self._keeper.flush_all([(c, d) for c, d in decided if d.action == "flush"])

    # -- health and engine metrics ---------------------------------------------------------------

    async def check_health(self) -> dict[str, dict[str, str]]:
        """Probe every replica now; backend → replica → ``healthy``/``degraded``/``unavailable``."""
        report: dict[str, dict[str, str]] = {}
        for name, runtime in self._runtimes.items():
            for replica in runtime.replicas:
                if replica.endpoint is None:
                    continue
                if await self._engines.probe(runtime.spec, replica.endpoint):
                    if replica.health == "unavailable":
                        replica.succeeded()
                        runtime.queue.wake()
                else:
                    replica.probe_failed(runtime.config.probe_interval)
            report[name] = {r.label: r.health for r in runtime.replicas}
        return report

    async def engine_metrics(self, backend: str) -> dict[str, dict[str, float] | None]:
        """Each replica's own metrics endpoint, parsed (None where the engine has none)."""
        runtime = self._known(backend)
        found: dict[str, dict[str, float] | None] = {}
        for replica in runtime.replicas:
            if replica.endpoint is None:
                found[replica.label] = None
                continue
            found[replica.label] = await self._engines.metrics(runtime.spec, replica.endpoint)
            replica.kv_usage = await self._engines.kv_usage(runtime.spec, replica.endpoint)
        return found

    # -- metrics ---------------------------------------------------------------------------------

    def run_stats(self, run_id: str) -> RunServingStats:
        """The calls of run ``run_id`` this layer served (empty if none or forgotten)."""
        return RunServingStats(run_id, tuple(self._by_run.get(run_id, ())))

    def summary(self, backend: str | None = None, replica: str | None = None) -> ServingSummary:
        """Aggregates over recent calls: of everything, one backend, or one replica of it
        (``replica`` is its label: the URL)."""
        if backend is None:
            return ServingSummary.of(self._calls)
        labels = [r.label for r in self._known(backend).replicas]
        if replica is not None:
            if replica not in labels:
                raise ConfigurationError(f"backend {backend!r} has no replica {replica!r}")
            labels = [replica]
        calls = (c for c in self._calls if c.backend == backend and c.replica in labels)
        return ServingSummary.of(calls, labels)

    def summaries(self) -> dict[str, ServingSummary]:
        """:meth:`summary` of every backend that has served calls."""
        names = sorted({c.backend for c in self._calls})
        return {name: self.summary(name) for name in names}

    def calls(self) -> list[CallMetrics]:
        """The recent calls, oldest first."""
        return list(self._calls)

    def reset_metrics(self) -> None:
        """Forget recorded calls and flushes (the caches and routing record stay)."""
        self._calls.clear()
        self._by_run.clear()
        self.flushes.clear()

    async def aclose(self) -> None:
        """Close the layer's HTTP client for engine probes and flushes."""
        await self._engines.aclose()


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
