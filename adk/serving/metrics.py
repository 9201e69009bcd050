"""Per-call serving metrics and their aggregates per run, backend and replica."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class CallMetrics:
    """One model call as the serving layer saw it.

    Times are seconds; ``ttft`` (time to first token, from dispatch) and
    ``tpot`` (time per output token after the first) need a streamed call;
    for a non-streamed one ``ttft`` is the whole latency and ``tpot`` is None.
    ``cache`` is the decision taken for the run's context at this call;
    ``flushed`` names contexts this call's boundary flushed.
    """

    call_id: str
    run_id: str
    session_id: str
    agent: str
    stage: str
    backend: str
    replica: str
    queue_wait: float
    latency: float
    ttft: float | None
    tpot: float | None
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    cost: float | None
    cache: str
    prefix_break: bool
    expected_cached_tokens: int = 0
    """Tokens the layer's own record predicted the replica had cached."""
    attempts: int = 1
    error: str | None = None
    flushed: tuple[str, ...] = ()
    failed_over: bool = False
    """This attempt failed and the call was tried again (its next attempt is another line)."""

    @property
    def prefill_tokens(self) -> int:
        """Prompt tokens the engine had to compute (not served from its cache)."""
        return self.prompt_tokens - self.cached_tokens


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    import statistics  # only when metrics are summarised; costs ~10 ms at import

    return statistics.quantiles(values, n=100, method="inclusive")[round(q) - 1]


@dataclass(frozen=True)
class ServingSummary:
    """Aggregates of a set of calls (a run, a backend, a replica, or everything)."""

    calls: int = 0
    """Calls, each counted once however many attempts it took."""
    errors: int = 0
    """Calls that failed (after any failover)."""
    failovers: int = 0
    """Attempts that failed and were tried again elsewhere (or once more on the same replica)."""
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    prefix_breaks: int = 0
    queue_wait_p50: float | None = None
    queue_wait_p95: float | None = None
    ttft_p50: float | None = None
    ttft_p95: float | None = None
    tpot_p50: float | None = None
    per_replica: dict[str, int] = field(default_factory=dict)
    """Attempts per replica (a failed-over call loaded two)."""

    @property
    def prefill_tokens(self) -> int:
        """Prompt tokens computed by the engines."""
        return self.prompt_tokens - self.cached_tokens

    @property
    def hit_rate(self) -> float:
        """Share of prompt tokens served from a cache."""
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def imbalance(self) -> float:
        """Max over mean calls per replica (1.0 is perfectly even)."""
        counts = list(self.per_replica.values())
        if not counts or not sum(counts):
            return 1.0
        return max(counts) / (sum(counts) / len(counts))

    @classmethod
    def of(cls, calls: Iterable[CallMetrics], replicas: Iterable[str] = ()) -> ServingSummary:
        """Aggregate ``calls``; ``replicas`` lists replicas to count even with no calls."""
        items = list(calls)
        per_replica = dict.fromkeys(replicas, 0)
        for call in items:  # every attempt loaded its replica
            per_replica[call.replica] = per_replica.get(call.replica, 0) + 1
        retried = sum(c.failed_over for c in items)
        ok = [c for c in items if c.error is None]
        waits = [c.queue_wait for c in items]
        ttfts = [c.ttft for c in ok if c.ttft is not None]
        tpots = [c.tpot for c in ok if c.tpot is not None]
        return cls(
            calls=len(items) - retried,
            errors=len(items) - len(ok) - retried,
            failovers=retried,
            prompt_tokens=sum(c.prompt_tokens for c in ok),
            cached_tokens=sum(c.cached_tokens for c in ok),
            completion_tokens=sum(c.completion_tokens for c in ok),
            cost=sum(c.cost or 0.0 for c in ok),
            prefix_breaks=sum(c.prefix_break for c in items),
            queue_wait_p50=_percentile(waits, 50),
            queue_wait_p95=_percentile(waits, 95),
            ttft_p50=_percentile(ttfts, 50),
            ttft_p95=_percentile(ttfts, 95),
            tpot_p50=_percentile(tpots, 50),
            per_replica=per_replica,
        )


@dataclass(frozen=True)
class RunServingStats:
    """A run's model calls as the serving layer saw them, with aggregates."""

    run_id: str
    calls: tuple[CallMetrics, ...]

    @property
    def summary(self) -> ServingSummary:
        """Totals over the run."""
        return ServingSummary.of(self.calls)

    def by_backend(self) -> dict[str, ServingSummary]:
        """Totals per backend."""
        names = sorted({c.backend for c in self.calls})
        return {n: ServingSummary.of(c for c in self.calls if c.backend == n) for n in names}

    def table(self) -> str:
        """The calls as a fixed-width text table, one line per call."""
        return format_calls(self.calls)


def format_calls(calls: Iterable[CallMetrics]) -> str:
    """A readable table of calls: agent, replica, wait, TTFT, tokens, cache decision."""
    header = (
        f"{'agent':<12} {'backend':<10} {'replica':<24} {'wait ms':>7} {'ttft ms':>7} "
        f"{'prompt':>6} {'cached':>6} {'out':>4}  cache"
    )
    lines = [header, "-" * len(header)]
    for c in calls:
        ttft = f"{c.ttft * 1000:7.1f}" if c.ttft is not None else f"{'-':>7}"
        note = c.error or c.cache + (" [prefix break]" if c.prefix_break else "")
        lines.append(
            f"{c.agent[:12]:<12} {c.backend[:10]:<10} {c.replica[-24:]:<24} "
            f"{c.queue_wait * 1000:7.1f} {ttft} {c.prompt_tokens:>6} {c.cached_tokens:>6} "
            f"{c.completion_tokens:>4}  {note}"
        )
    return "\n".join(lines)
