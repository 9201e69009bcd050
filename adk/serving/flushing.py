"""Carrying out flushes: soft (the layer's record) and hard (the engine's memory), and pressure.

A hard flush frees engine memory through the engine's own endpoint: SGLang
``/flush_cache`` and vLLM ``/reset_prefix_cache`` drop the whole prefix cache,
llama.cpp erases one slot. It is sent only while the engine is idle (no call
of ours in flight there, and the engine itself reports nothing running);
until then it waits and is retried after the replica's next call.
"""

from __future__ import annotations

import time
from collections import deque

import anyio

from adk.serving.cache import CacheDecision, CachePolicy
from adk.serving.contexts import CacheContext, ContextTracker
from adk.serving.engines import EngineClient
from adk.serving.replica import Replica
from adk.serving.runtime import BackendRuntime

IDLE_CHECKS = 5
IDLE_CHECK_INTERVAL = 0.02
"""A hard flush asks the engine whether it is idle up to this many times, this far apart."""

NO_PRESSURE = ("litellm", "openai", "ollama")
"""Kinds of engine that report no KV-cache usage."""


class FlushRecord:
    """A cache flush the layer decided: which context, where, why, and what was done."""

    __slots__ = ("at", "hard", "reason", "replica", "run_id", "sent", "stage")

    def __init__(self, context: CacheContext, reason: str, hard: bool) -> None:
        self.run_id = context.run_id
        self.stage = context.stage
        self.replica = context.replica.label if context.replica is not None else ""
        self.reason = reason
        self.hard = hard
        self.sent: bool | None = None
        """Hard flushes: True once the engine confirmed, False if it refused, None while waiting."""
        self.at = time.time()

    def __repr__(self) -> str:
        kind = "hard" if self.hard else "soft"
        return f"FlushRecord({self.stage}@{self.replica} {kind}: {self.reason}, sent={self.sent})"


class CacheKeeper:
    """Flushes contexts the cache policy gives up, and watches engines' KV pressure."""

    def __init__(
        self,
        engines: EngineClient,
        contexts: ContextTracker,
        policy: CachePolicy,
        runtimes: dict[str, BackendRuntime],
    ) -> None:
        self._engines = engines
        self._contexts = contexts
        self.policy = policy
        self.runtimes = runtimes
        """The layer's backends by name (shared, so backends added later are seen)."""
        self.records: deque[FlushRecord] = deque(maxlen=10_000)

    async def flush_all(self, decided: list[tuple[CacheContext, CacheDecision]]) -> None:
        """Drop these contexts: always from the layer's record, from engines for hard backends.

        Several contexts on one engine cost one whole-cache flush, not one each.
        """
        touched: dict[int, tuple[BackendRuntime, Replica]] = {}
        for context, decision in decided:
            marked = self._mark(context, decision)
            if marked is not None:
                touched[id(marked[1])] = marked
        for runtime, replica in touched.values():
            await self._flush_if_idle(runtime, replica)

    async def flush(self, context: CacheContext, decision: CacheDecision) -> None:
        """Drop one context (see :meth:`flush_all`)."""
        await self.flush_all([(context, decision)])

    def _mark(
        self, context: CacheContext, decision: CacheDecision
    ) -> tuple[BackendRuntime, Replica] | None:
        """Record the flush and forget the context; the replica if a hard flush is now due."""
        replica = context.replica
        if replica is None:
            return None
        runtime = self.runtimes.get(replica.backend)
        hard = (
            runtime is not None and runtime.config.flush == "hard" and self._can_hard_flush(runtime)
        )
        record = FlushRecord(context, decision.reason, hard)
        self.records.append(record)
        if not hard or runtime is None:
            # Soft: nothing is freed on the engine; the context's blocks become the first
            # the layer's record lets go, and its llama.cpp slot is free for others.
            replica.prefix.release(context.owner)
            for slot in replica.slots_of(context.owner):
                replica.drop_slot(slot)
            return None
        replica.prefix.release(context.owner, drop=True)
        if runtime.spec.slot_erase:
            for slot in replica.slots_of(context.owner):
                replica.erase_pending[slot] = context.owner
        else:
            replica.flush_pending = True
        replica.pending_records.append(record)
        return runtime, replica

    @staticmethod
    def _can_hard_flush(runtime: BackendRuntime) -> bool:
        return runtime.spec.slot_erase or runtime.spec.flush_path is not None

    async def _flush_if_idle(self, runtime: BackendRuntime, replica: Replica) -> None:
        """Send pending hard flushes, only while no call is in flight on the engine."""
        if replica.in_flight or replica.endpoint is None:
            return
        if not (replica.flush_pending or replica.erase_pending):
            return
        # Our own calls are not the only ones: ask the engine too. An engine finishes its
        # bookkeeping just after the answer's last byte, so give it a moment to go idle;
        # if it stays busy (other clients), the flush waits for this replica's next call.
        with anyio.CancelScope(shield=True):
            for attempt in range(IDLE_CHECKS):
                if not await self._engines.busy(runtime.spec, replica.endpoint):
                    break
                if attempt == IDLE_CHECKS - 1 or replica.in_flight:
                    return
                await anyio.sleep(IDLE_CHECK_INTERVAL)
        records, replica.pending_records = replica.pending_records, []
        ok = True
        with anyio.CancelScope(shield=True):
            if replica.flush_pending:
                replica.flush_pending = False
                replica.erase_pending.clear()
                ok = await self._engines.flush(runtime.spec, replica.endpoint)
                if ok:
                    replica.prefix.clear()
            else:
                pending, replica.erase_pending = replica.erase_pending, {}
                for slot, owner in pending.items():
                    if replica.slot_owner(slot) != owner or replica.in_flight:
                        continue  # the slot went to another context meanwhile: keep its cache
                    if await self._engines.erase_slot(replica.endpoint, slot):
                        replica.drop_slot(slot, erased=True)
                    else:
                        ok = False
        for record in records:
            record.sent = ok

    async def after_call(self, runtime: BackendRuntime, replica: Replica) -> None:
        """After a call: send hard flushes now possible; read pressure and act on it."""
        await self._flush_if_idle(runtime, replica)
        threshold = self.policy.pressure_threshold
        if threshold is None or replica.endpoint is None or runtime.spec.kind in NO_PRESSURE:
            return
        now = time.monotonic()
        if now - replica.kv_read_at < self.policy.pressure_interval:
            return
        replica.kv_read_at = now
        replica.kv_usage = await self._engines.kv_usage(runtime.spec, replica.endpoint)
        if replica.kv_usage is None or replica.kv_usage < threshold:
            return
        for context in self._contexts.oldest_idle(replica):
            await self.flush(
                context, CacheDecision("flush", f"pressure: KV usage {replica.kv_usage:.2f}")
            )
