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

The layer holds configuration, the record of contexts and the metrics; each
call is carried out by a :class:`~adk.serving.dispatch.Dispatcher`. That
machinery is built (and its modules imported) when the first backend is
added or named: a layer that only ever calls model objects, the default,
costs an import of this module and nothing more.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import aclosing
from typing import TYPE_CHECKING

from adk.errors import ConfigurationError
from adk.models.base import ChatModel, ModelChunk, ModelRequest, ModelResponse

if TYPE_CHECKING:
    from adk.serving.cache import CachePolicy
    from adk.serving.config import Backend
    from adk.serving.contexts import ContextTracker
    from adk.serving.dispatch import Dispatcher
    from adk.serving.engines import EngineClient
    from adk.serving.flushing import CacheKeeper, FlushRecord
    from adk.serving.metrics import CallMetrics, RunServingStats, ServingSummary
    from adk.serving.replica import Replica
    from adk.serving.routing import RoutingPolicy
    from adk.serving.runtime import BackendRuntime
    from adk.serving.shared_routing import SharedRoutingState

logger = logging.getLogger("adk.serving")

CallListener = Callable[["CallMetrics"], None]


class _Machinery:
    """What serving backends needs: the context record, engine client, cache keeper, dispatcher."""

    __slots__ = ("contexts", "dispatcher", "engines", "keeper")

    def __init__(self, layer: ServingLayer, stable_prefixes: bool) -> None:
        from adk.serving.contexts import ContextTracker
        from adk.serving.dispatch import Dispatcher
        from adk.serving.engines import EngineClient
        from adk.serving.flushing import CacheKeeper

        policy = layer.cache_policy
        self.contexts: ContextTracker = ContextTracker(policy)
        self.engines: EngineClient = EngineClient()
        self.keeper: CacheKeeper = CacheKeeper(self.engines, self.contexts, policy, layer._runtimes)
        self.dispatcher: Dispatcher = Dispatcher(
            self.contexts, self.keeper, self.engines, layer._record, stable_prefixes
        )


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
    - ``shared_state``: a :class:`~adk.serving.shared_routing.SharedRoutingState`
      to route on the prefix and load records of every process sharing it
      (workers on the same engines); default: this process's own record.
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
        shared_state: SharedRoutingState | None = None,
    ) -> None:
        self.shared_state = shared_state
        self.routing = routing if routing is not None else "prefix_aware"
        self._cache_policy = cache
        self._stable_prefixes = stable_prefixes
        self._machinery: _Machinery | None = None
        self._runtimes: dict[str, BackendRuntime] = {}
        self._listeners: list[CallListener] = (
            [] if on_call is None else [on_call] if callable(on_call) else list(on_call)
        )
        self._calls: deque[CallMetrics] = deque(maxlen=keep_calls)
        self._by_run: OrderedDict[str, list[CallMetrics]] = OrderedDict()
        for backend in backends:
            self.add_backend(backend)

    @property
    def cache_policy(self) -> CachePolicy:
        """The workflow cache policy (the default one unless one was given)."""
        if self._cache_policy is None:
            from adk.serving.cache import CachePolicy

            self._cache_policy = CachePolicy()
        return self._cache_policy

    @property
    def _parts(self) -> _Machinery:
        machinery = self._machinery
        if machinery is None:
            machinery = self._machinery = _Machinery(self, self._stable_prefixes)
        return machinery

    @property
    def flushes(self) -> deque[FlushRecord]:
        """Recent flush decisions (:class:`FlushRecord`), newest last."""
        return self._parts.keeper.records

    # -- configuration ---------------------------------------------------------------------------

    def add_backend(self, backend: Backend) -> None:
        """Register ``backend`` under its name."""
        from adk.serving.runtime import BackendRuntime

        if backend.name in self._runtimes:
            raise ConfigurationError(f"two backends are named {backend.name!r}")
        self._parts  # noqa: B018 - a layer with backends has its machinery from the start
        runtime = self._runtimes[backend.name] = BackendRuntime(backend, self.routing)
        runtime.shared = self.shared_state

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
            from adk.serving.config import Backend

            # A bare litellm model id: an implicit backend with no limits of its own.
            self.add_backend(
                Backend(name=name, model=name, kind="litellm", max_concurrency=1_000_000)
            )
            runtime = self._runtimes[name]
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
        async with aclosing(
            self._parts.dispatcher.call(self._runtime(model), request, streaming=False)
        ) as items:
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
        async with aclosing(self._parts.dispatcher.call(runtime, request, streaming=True)) as items:
            async for item in items:
                assert isinstance(item, ModelChunk)
                yield item

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
        parts = self._parts
        decided = parts.contexts.finish_run(run_id)
        await parts.keeper.flush_all([(c, d) for c, d in decided if d.action == "flush"])

    # -- health and engine metrics ---------------------------------------------------------------

    async def check_health(self) -> dict[str, dict[str, str]]:
        """Probe every replica now; backend → replica → ``healthy``/``degraded``/``unavailable``."""
        report: dict[str, dict[str, str]] = {}
        for name, runtime in self._runtimes.items():
            for replica in runtime.replicas:
                if replica.endpoint is None:
                    continue
                if await self._parts.engines.probe(runtime.spec, replica.endpoint):
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
            found[replica.label] = await self._parts.engines.metrics(runtime.spec, replica.endpoint)
            replica.kv_usage = await self._parts.engines.kv_usage(runtime.spec, replica.endpoint)
        return found

    # -- metrics ---------------------------------------------------------------------------------

    def run_stats(self, run_id: str) -> RunServingStats:
        """The calls of run ``run_id`` this layer served (empty if none or forgotten)."""
        from adk.serving.metrics import RunServingStats

        return RunServingStats(run_id, tuple(self._by_run.get(run_id, ())))

    def call_metrics(self, run_id: str, call_id: str) -> CallMetrics | None:
        """The metrics of call ``call_id`` of run ``run_id`` (its last attempt), if recorded.

        Read right after the call (tracing puts them on the call's span): the
        run's newest lines are looked at first.
        """
        calls = self._by_run.get(run_id)
        if calls is not None:
            for metrics in reversed(calls):
                if metrics.call_id == call_id:
                    return metrics
        return None

    def summary(self, backend: str | None = None, replica: str | None = None) -> ServingSummary:
        """Aggregates over recent calls: of everything, one backend, or one replica of it
        (``replica`` is its label: the URL)."""
        from adk.serving.metrics import ServingSummary

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
        if self._machinery is not None:
            self._machinery.keeper.records.clear()

    async def aclose(self) -> None:
        """Close the layer's HTTP client for engine probes and flushes."""
        if self._machinery is not None:
            await self._machinery.engines.aclose()
        if self.shared_state is not None:
            await self.shared_state.aclose()
