"""One model call through a backend: canonical form, cache decision, queue, route, send, measure.

The :class:`~adk.serving.layer.ServingLayer` owns configuration and metrics;
a :class:`Dispatcher` carries out each call, failing over between replicas
and recording every attempt. :meth:`Dispatcher.call` reads as its steps (open
the call, acquire a replica, send, release, record the answer or the failure);
each step is a short method, and what they share is one ``_Call`` object.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import fields, replace
from typing import Any

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
from adk.serving.contexts import CacheContext, ContextTracker
from adk.serving.engines import EngineClient
from adk.serving.flushing import CacheKeeper
from adk.serving.metrics import CallMetrics
from adk.serving.prefix import (
    BLOCK_CHARS,
    CHARS_PER_TOKEN,
    Fingerprint,
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


class _Call:
    """One call's state, carried from step to step and from one attempt to the next.

    The steps of :meth:`Dispatcher.call` are separate methods; this object is
    what they share (the locals of one long method before), so that each step
    takes one argument. Fields annotated at class level are set later: ``route``
    before the first attempt, the others (the current attempt) by
    :meth:`Dispatcher._acquire` whenever an attempt starts.
    """

    __slots__ = (
        "attempts",
        "avoid",
        "broke",
        "context",
        "decision",
        "done",
        "expected",
        "first",
        "flushes",
        "fp",
        "has_calls",
        "last_error",
        "outgoing",
        "replica",
        "resets",
        "route",
        "runtime",
        "sent",
        "slot",
        "started",
        "usage",
        "waited",
        "yielded",
    )

    route: RouteRequest
    """What the routing policy knows about the call (set once the boundary's flushes are
    done, before the first attempt)."""
    slot: int | None
    """The llama.cpp slot this attempt is pinned to."""
    outgoing: ModelRequest
    """``sent`` with this replica's call parameters and cache hints."""
    waited: float
    """Seconds this attempt waited in the queue."""
    expected: int
    """Prompt tokens the layer's record expects the replica to have cached."""
    started: float
    first: float | None
    """When the first token arrived (streams only)."""
    usage: Usage | None
    has_calls: bool
    """The streamed answer calls tools."""
    yielded: bool
    """A chunk of this attempt reached the caller: it can no longer be retried."""

    def __init__(
        self,
        runtime: BackendRuntime,
        sent: ModelRequest,
        fp: Fingerprint,
        broke: bool,
        context: CacheContext,
        decision: CacheDecision,
        flushes: list[tuple[CacheContext, CacheDecision]],
    ) -> None:
        self.runtime = runtime
        self.sent = sent
        """The request as sent: canonical, with the provider's cache breakpoints."""
        self.fp = fp
        self.broke = broke
        """The prompt does not extend this agent's previous one (a prefix break)."""
        self.context = context
        self.decision = decision
        self.flushes = flushes
        """Contexts this call's stage boundary flushed (named in its metrics)."""
        self.avoid: set[int] = set()
        """Replicas this call failed on: not tried again."""
        self.resets: set[int] | None = None
        """Replicas already retried once after a broken (not refused) connection."""
        self.last_error: ModelError | None = None
        self.attempts = 0
        self.done = False
        """The answer had no tool calls: the stage's turn is over."""
        self.replica: Replica | None = None
        """Where the current (or last) attempt went; the context lives there after the call."""

    def saw(self, chunk: ModelChunk) -> None:
        """Note a streamed chunk that matters: the first token's time, the usage, tool calls.

        Called only for chunks before the first token and chunks with usage or
        tool calls, so that the bare text chunks of a long stream cost no call.
        """
        if self.first is None and (chunk.content or chunk.tool_calls):
            self.first = time.monotonic()
        self.usage = chunk.usage or self.usage
        if chunk.tool_calls:
            self.has_calls = True


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
        """Make one call through ``runtime``: a response, or the chunks of a stream.

        Open the call and flush what its boundary gave up; then attempt until one
        answers (acquire a replica, send, release; a failure is recorded and may
        fail over); record the answer. Chunks are relayed here, not by a step, so
        that they pass through one generator only.
        """
        call = self._open(runtime, request)
        if call.flushes:
            await self.keeper.flush_all(call.flushes)
        call.route = self._route(call)
        try:
            while True:
                replica = await self._acquire(call)
                response: ModelResponse | None = None
                try:
                    if streaming:
                        chunks = replica.model.stream(call.outgoing)
                        try:
                            async for chunk in chunks:
                                if call.first is None or chunk.usage or chunk.tool_calls:
                                    call.saw(chunk)
                                call.yielded = True
                                yield chunk
                        finally:
                            await _close(chunks)
                        call.done = not call.has_calls
                    else:
                        response = await replica.model.generate(call.outgoing)
                        call.usage = response.usage
                        call.done = not response.message.tool_calls
                except ModelError as exc:
                    if self._failed(call, replica, exc):
                        continue
                    raise
                finally:
                    self._release(call, replica)
                replica.succeeded()
                if response is not None:
                    yield response
                self._answered(call, replica)
                await self.keeper.after_call(runtime, replica)
                if runtime.shared is not None:
                    await runtime.shared.publish(runtime)
                return
        finally:
            self.contexts.end(call.context, call.replica, call.fp, call.done)

    def _open(self, runtime: BackendRuntime, request: ModelRequest) -> _Call:
        """Canonical form, fingerprint, prefix-break check, and the cache decision with the
        contexts this boundary flushes."""
        sent = canonical_request(request) if self.stable_prefixes else request
        text, static = prompt_text(sent)
        fp = fingerprint_text(text, static)
        broke = self.contexts.prefix_break(sent, fp, text)
        del text
        config = runtime.config
        context, decision, flushes = self.contexts.begin(sent, config.name, config.model, fp)
        sent = runtime.marked(sent)
        return _Call(runtime, sent, fp, broke, context, decision, flushes)

    @staticmethod
    def _route(call: _Call) -> RouteRequest:
        """What the routing policy knows about the call: who asks, the prompt's blocks, and
        the replica holding its context (read after the flushes, which may move it)."""
        sent, home = call.sent, call.context.replica
        return RouteRequest(
            sent.run_id,
            sent.session_id,
            sent.agent_name,
            call.fp,
            sent.priority,
            home.index if home is not None and home.backend == call.runtime.name else None,
        )

    async def _acquire(self, call: _Call) -> Replica:
        """Start an attempt: a replica's slot (probing replicas due for it first), the layer's
        record of what it will cache there, and the request with that engine's cache hints.

        When no replica can take the call, the :class:`BackendUnavailableError` is
        chained to the failure of this call's previous attempt, if any.
        """
        runtime = call.runtime
        call.attempts += 1
        await runtime.revive(self.engines)
        shared = runtime.shared
        view = await shared.view(runtime, call.sent) if shared is not None else None
        try:
            replica, call.waited = await runtime.queue.acquire(
                runtime.chooser(call.route, call.avoid, view), call.sent.priority
            )
        except BackendUnavailableError as exc:
            if call.last_error is not None:
                raise exc from call.last_error
            raise
        call.replica = replica
        owner, fp = call.context.owner, call.fp
        call.expected = replica.prefix.match(fp) * BLOCK_CHARS // CHARS_PER_TOKEN
        replica.prefix.insert(fp, owner)
        call.slot = slot = replica.take_slot(owner, fp) if runtime.spec.slot_erase else None
        call.outgoing = _with_params(call.sent, runtime.params_for(call.sent, replica, slot))
        if shared is not None and view is not None:
            try:
                await shared.routed(runtime, replica, view)
            except BaseException:  # cancelled while recording: the slot is not the caller's yet
                self._release(call, replica)
                raise
        call.started = time.monotonic()
        call.first = call.usage = None
        call.has_calls = call.yielded = False
        return replica

    def _release(self, call: _Call, replica: Replica) -> None:
        """End an attempt, answered or not: free its llama.cpp slot and its queue slot."""
        if call.slot is not None:
            replica.free_slot(call.slot)
        call.runtime.queue.release(replica)

    def _failed(self, call: _Call, replica: Replica, exc: ModelError) -> bool:
        """Record a failed attempt; True if the call is to be tried again."""
        call.last_error = exc
        again = self._after_failure(call, replica, exc)
        if again == "same":
            if call.resets is None:
                call.resets = set()
            call.resets.add(replica.index)
        replica.prefix.release(call.context.owner, drop=True)
        metrics = self._metrics(
            call,
            replica,
            None,
            call.broke and again is None,
            error=f"{type(exc).__name__}: {exc}",
            failed_over=again is not None,
        )
        self.record(metrics)
        if again is None:
            return False
        logger.warning("%s failed, trying again: %s", replica.label, exc)
        return True

    def _answered(self, call: _Call, replica: Replica) -> None:
        """Record the attempt that answered, with the contexts its boundary flushed."""
        flushed = tuple(f"{c.label}: {v.reason}" for c, v in call.flushes) if call.flushes else ()
        self.record(self._metrics(call, replica, call.usage, call.broke, flushed=flushed))

    def _after_failure(self, call: _Call, replica: Replica, exc: ModelError) -> str | None:
        """Note a failed attempt; where to try next: ``"same"`` replica, ``"other"``, or None.

        A refused connection takes the replica out of routing at once. A connection
        that broke without being refused (typically a pooled keep-alive connection the
        server had just closed) is retried once on the same replica before it counts.
        A rejected request (400, auth, context window) says nothing about the
        replica's health, a rate limit only about its load. Nothing is retried once
        text has streamed.
        """
        yielded = call.yielded
        connection = isinstance(exc, ModelConnectionError)
        refused = connection and _refused(exc)
        retried = call.resets is not None and replica.index in call.resets
        if connection and not refused and not retried and not yielded:
            return "same"
        runtime = call.runtime
        if isinstance(exc, _REPLICA_FAULTS):
            replica.failed(unreachable=refused, probe_interval=runtime.config.probe_interval)
        call.avoid.add(replica.index)
        if yielded or not isinstance(exc, _FAILOVER_ERRORS):
            return None
        more = any(r.index not in call.avoid and r.routable for r in runtime.replicas)
        return "other" if more else None

    def _metrics(
        self,
        call: _Call,
        replica: Replica,
        usage: Usage | None,
        broke: bool,
        *,
        error: str | None = None,
        flushed: tuple[str, ...] = (),
        failed_over: bool = False,
    ) -> CallMetrics:
        """The metrics line of the attempt that just ended (answered, or failed with ``error``)."""
        request, runtime = call.sent, call.runtime
        started, first = call.started, call.first
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
            queue_wait=call.waited,
            latency=ended - started,
            ttft=ttft if error is None else None,
            tpot=tpot,
            prompt_tokens=usage.prompt_tokens,
            cached_tokens=usage.cached_tokens,
            completion_tokens=usage.completion_tokens,
            cost=cost,
            cache=str(call.decision),
            prefix_break=broke,
            expected_cached_tokens=call.expected,
            attempts=call.attempts,
            error=error,
            flushed=flushed,
            failed_over=failed_over,
        )


def _with_params(request: ModelRequest, params: dict[str, Any]) -> ModelRequest:
    """``replace(request, params=params)``, in half the time.

    Every attempt makes one. ``dataclasses.replace`` inspects each field's
    definition and builds keyword dictionaries on every call, as much time as
    the rest of the dispatcher's own work; naming the fields costs one plain
    constructor call. :data:`_FAST_COPY` guards the list: when
    :class:`ModelRequest` gains a field (or for a subclass), ``replace`` is used.
    """
    if not _FAST_COPY or type(request) is not ModelRequest:
        return replace(request, params=params)
    return ModelRequest(
        messages=request.messages,
        tools=request.tools,
        params=params,
        stream=request.stream,
        run_id=request.run_id,
        session_id=request.session_id,
        agent_name=request.agent_name,
        agent_path=request.agent_path,
        stage=request.stage,
        call_id=request.call_id,
        priority=request.priority,
        cache=request.cache,
        cache_breakpoints=request.cache_breakpoints,
    )


_COPIED_FIELDS = frozenset(
    {
        "messages",
        "tools",
        "params",
        "stream",
        "run_id",
        "session_id",
        "agent_name",
        "agent_path",
        "stage",
        "call_id",
        "priority",
        "cache",
        "cache_breakpoints",
    }
)
"""The fields :func:`_with_params` names (mypy checks that each exists)."""

_FAST_COPY = {f.name for f in fields(ModelRequest) if f.init} == _COPIED_FIELDS
"""Whether :func:`_with_params` copies every field; if not, it uses ``replace``."""


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
