"""Context management on a long tool loop: prefill computed by the engine, per strategy (#13).

What is measured, and why. A ContextPolicy claims two things: it keeps a
long tool loop inside the model's window, and it does so without destroying
the engine's prefix cache (GC in rare whole steps, compaction rarely, so the
prompt's prefix stays byte-identical between them). The judge is the engine:
prompt, cached and computed ("prefill") tokens come from the reference
engine's own counters (tests/support/engine_server.py), never from adk.

The workload. One ChatModelAgent, its model a Backend name served by one
reference engine on loopback, whose scripted LLM asks for the next tool call
(three tools in turn, each taking an item number) until ``iterations`` (300)
tool results are in, then answers. Each tool result is 1,000-4,000 tokens in
the *engine's* tokenizer (sizes from a seeded RNG, so every strategy and
repeat sees the same results); the stable prefix is a ~1,000-token system
prompt plus the tool specs. The window is 8,000 tokens, enforced by the
engine: a prompt over it is refused with OpenAI's ``context_length_exceeded``
error (adk's ``ContextWindowExceededError``), before any prefill. The LLM
reads its progress from the prompt (the highest item number it sees, in tool
calls, results or a summary), so a strategy that forgets work repeats it.

Strategies, one fresh engine (cold cache) per trial:

- ``none``: no management; fails at the window (how far it got is reported);
- ``naive-sliding``: a Middleware that, on every call over ``window -
  headroom``, drops the oldest messages after the system prompt and the task
  (an assistant tool call with its results as one unit) until the prompt fits;
- ``naive-summarise``: a Middleware that, whenever the prompt is over
  ``threshold x (window - headroom)``, summarises everything but the newest
  call/result pair with a model call (the same engine) and sends the summary
  in its place;
- ``ours``: ``ContextPolicy(window=8000, headroom=800, threshold=0.9,
  tool_result_max_age=1)`` with GC and LLM compaction (its default
  summariser: the agent's own model). ``tool_result_max_age=1`` because the
  7,200 usable tokens hold only one or two results of this size next to the
  stable prefix: an older result kept whole is computed again after the next
  GC step or compaction rewrites what precedes it (at 100 iterations, ages 2
  and 3 compute 1.7x and 1.8x what age 1 does). Every strategy counts
  tokens with the engine's tokenizer (``counter=``), as a deployment counts
  with its model's.

"naive" in the ratio is the better (lower prefill) of the two naive ones.
Each strategy runs ``repeats`` times (3) and medians are reported.

Targets (reported, not enforced): ours' max prompt <= window, ours' prefill
<= 0.6 x naive's, ours' cached fraction >= 0.7. The last two are out of
reach for *any* strategy on this workload, and the script prints by how much
("best possible"):

- every call that carries a new tool result must compute it (the engine has
  never seen it), and the first prompt is computed once: prefill >= first
  prompt + sum(results). A sliding window over an 8,000-token window keeps
  only one or two older results (2,500 tokens on average each), so it
  recomputes only those beyond that floor: the floor is about 0.66 x its
  prefill, above 0.6. (With a window much larger than a result, a sliding
  window recomputes far more and the ratio falls well below 0.6.)
- with ``N`` agent calls of at most ``W`` tokens, ``cached / prompt <= 1 -
  sum(results) / (N x W)``: results of 2,500 tokens on average against W =
  8,000 give about 0.69 (0.66 with the 800 tokens of headroom a reply needs).

    python bench/context.py                  # 300 iterations x 4 strategies x 3 repeats
    python bench/context.py --quick          # smoke test (30 iterations, 1 repeat)
    python bench/context.py --iterations 100 --repeats 1 --strategies ours,naive-sliding
    python bench/context.py --window 32000 --iterations 150 --repeats 1   # a roomier window

The last stdout line is one JSON object: ``max_prompt_tokens``, ``window``,
``prefill_ratio_vs_naive``, ``cached_fraction``, ``cached_fraction_bound``,
the naive figures and the per-strategy medians.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

if __package__:  # imported as bench.context (the smoke test)
    from bench._common import adk_location, base_parser, emit_json, median, print_table
    from bench._context_workload import (
        SlidingWindow,
        SummariseOverThreshold,
        WindowedEngine,
        Workload,
        engine_counter,
        scripted_llm,
    )
else:  # a script: bench/ first, the repository root last (for tests.support)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.path.append(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from _common import adk_location, base_parser, emit_json, median, print_table
    from _context_workload import (
        SlidingWindow,
        SummariseOverThreshold,
        WindowedEngine,
        Workload,
        engine_counter,
        scripted_llm,
    )

from adk import ChatModelAgent, ContextPolicy, Middleware, Runner
from adk.serving import Backend, ServingLayer

STRATEGIES = ("none", "naive-sliding", "naive-summarise", "ours")
NAIVE = ("naive-sliding", "naive-summarise")
ITERATIONS = 300
REPEATS = 3
WINDOW = 8_000
HEADROOM = 800
THRESHOLD = 0.9
BACKEND = "local"

PREFILL_RATIO_TARGET = 0.6
CACHED_FRACTION_TARGET = 0.7


@dataclass(frozen=True)
class Setup:
    """The window (the engine's limit and every strategy's), the reply's headroom, the threshold."""

    window: int = WINDOW
    headroom: int = HEADROOM
    threshold: float = THRESHOLD
    """Of the usable window: ours' policy threshold, and naive-summarise's trigger."""

    @property
    def usable(self) -> int:
        """Tokens a prompt may take: the window less the reply's headroom."""
        return self.window - self.headroom


# --------------------------------------------------------------------------- one trial


@dataclass
class Trial:
    """One strategy, one repeat: the engine's counters and what the run did."""

    strategy: str
    completed: bool
    items: int
    """Tool results produced before the run ended."""
    calls: int
    summary_calls: int
    rejected: int
    max_prompt: int
    max_attempted: int
    first_prompt: int
    """The first call's prompt: system prompt, tools and task (computed once at least)."""
    prompt_tokens: int
    cached_tokens: int
    prefill_tokens: int
    summary_prefill_tokens: int
    """Of ``prefill_tokens``, what the summary calls computed."""
    result_tokens: int
    """Tokens of the tool results produced (each is new to the engine: computed at least once)."""
    gc_steps: int
    compactions: int
    trims: int
    error: str | None
    wall_s: float

    @property
    def agent_calls(self) -> int:
        """The agent's own calls (summaries excluded)."""
        return self.calls - self.summary_calls

    @property
    def cached_fraction(self) -> float:
        """Cached / prompt tokens, the engine's counters."""
        return self.cached_tokens / self.prompt_tokens if self.prompt_tokens else 0.0

    @property
    def prefill_floor(self) -> int:
        """The least any strategy computes: the first prompt and every tool result once."""
        return self.first_prompt + self.result_tokens


def ours_policy(setup: Setup) -> ContextPolicy:
    """The policy of "ours": GC of every result but the newest, LLM compaction."""
    return ContextPolicy(
        window=setup.window,
        headroom=setup.headroom,
        threshold=setup.threshold,
        tool_result_max_age=1,
        compaction=True,
        keep_recent=0.25,
        counter=engine_counter,
    )


def build_agent(
    strategy: str, workload: Workload, progress: dict[str, int], setup: Setup
) -> tuple[ChatModelAgent, Middleware | None]:
    """The agent of ``strategy`` and its naive middleware (None for none/ours)."""
    middleware: Middleware | None = None
    if strategy == "naive-sliding":
        middleware = SlidingWindow(setup.usable)
    elif strategy == "naive-summarise":
        middleware = SummariseOverThreshold(int(setup.threshold * setup.usable))
    agent = ChatModelAgent(
        "auditor",
        model=BACKEND,
        instruction=workload.system_prompt,
        tools=workload.tools(progress),
        context=ours_policy(setup) if strategy == "ours" else None,
        middleware=[middleware] if middleware is not None else [],
        max_iterations=workload.iterations + 10,
    )
    return agent, middleware


async def run_trial(strategy: str, workload: Workload, setup: Setup) -> Trial:
    """``strategy`` on a fresh engine (cold cache) and a fresh serving layer."""
    progress = {"items": 0}
    kinds: dict[str, int] = {}
    completed, error = False, None
    engine = WindowedEngine(handler=scripted_llm(workload), max_context=setup.window).start()
    started = time.perf_counter()
    try:
        layer = ServingLayer(
            [Backend(BACKEND, model="test-model", kind="vllm", endpoint=engine.url)]
        )
        agent, middleware = build_agent(strategy, workload, progress, setup)
        try:
            async for event in Runner(agent, serving=layer).query(workload.task):
                custom = event.output.custom if event.output is not None else None
                if isinstance(custom, dict) and "kind" in custom:
                    kinds[custom["kind"]] = kinds.get(custom["kind"], 0) + 1
                if event.error is not None and error is None:
                    error = event.error.type
                message = event.message
                if message is not None and message.role == "assistant" and not event.partial:
                    completed = completed or message.content.startswith(workload.final_prefix)
        finally:
            await layer.aclose()
        engine.wait_idle()
        stats = engine.stats()
    finally:
        engine.stop()
    records = engine.records
    return Trial(
        strategy=strategy,
        completed=completed and error is None,
        items=progress["items"],
        calls=stats["requests"],
        summary_calls=sum(1 for r in records if r.summary),
        rejected=engine.rejected,
        max_prompt=max((r.prompt for r in records), default=0),
        max_attempted=engine.max_attempted,
        first_prompt=records[0].prompt if records else 0,
        prompt_tokens=stats["prompt_tokens_total"],
        cached_tokens=stats["cached_tokens_total"],
        prefill_tokens=stats["prefill_tokens_total"],
        summary_prefill_tokens=sum(r.prompt - r.cached for r in records if r.summary),
        result_tokens=workload.result_tokens(progress["items"]),
        gc_steps=kinds.get("gc_complete", 0),
        compactions=kinds.get("compaction_complete", 0) or getattr(middleware, "summaries", 0),
        trims=getattr(middleware, "trims", 0),
        error=error,
        wall_s=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- report

_MEDIANS = (
    "items", "calls", "summary_calls", "agent_calls", "rejected", "max_prompt", "max_attempted",
    "prompt_tokens", "cached_tokens", "prefill_tokens", "summary_prefill_tokens",
    "result_tokens", "prefill_floor", "gc_steps", "compactions", "trims",
)  # fmt: skip
"""The integer figures of a trial, reported as medians over the repeats."""


def medians(trials: Sequence[Trial]) -> dict[str, Any]:
    """The median figures of one strategy's repeats (``completed``: every repeat)."""
    figures: dict[str, Any] = {"completed": all(t.completed for t in trials)}
    for name in _MEDIANS:
        figures[name] = int(median(getattr(t, name) for t in trials))
    figures["cached_fraction"] = round(median(t.cached_fraction for t in trials), 4)
    figures["wall_s"] = round(median(t.wall_s for t in trials), 2)
    figures["error"] = next((t.error for t in trials if t.error), None)
    return figures


def print_strategies(figures: dict[str, dict[str, Any]]) -> None:
    """The per-strategy table and its legend."""
    rows = [
        [
            name,
            f["calls"],
            "yes" if f["completed"] else "no",
            f["items"],
            f"{f['max_prompt']:,}",
            f"{f['prompt_tokens']:,}",
            f"{f['prefill_tokens']:,}",
            f"{f['cached_fraction']:.3f}",
            f["gc_steps"],
            f["compactions"],
            f["trims"],
        ]
        for name, f in figures.items()
    ]
    headers = ["strategy", "calls", "completed", "items", "max prompt", "prompt tok"]
    headers += ["prefill tok", "cached", "gc steps", "compactions", "trims"]
    print_table(headers, rows, title="Per strategy (median over repeats; the engine's counters):")
    print("calls: chat completions the engine answered (summaries included); items: tool results")
    print("produced; max prompt: the largest prompt the engine accepted; prefill: prompt tokens")
    print("it computed; cached: cached / prompt tokens; compactions: ours' compaction_complete")
    print("events, naive-summarise's summaries; trims: calls the sliding window trimmed")
    for name, f in figures.items():
        if f["error"]:
            print(
                f"{name}: ended with {f['error']} after {f['items']} tool results "
                f"(largest prompt sent: {f['max_attempted']:,} tokens; "
                f"{f['rejected']} refused by the engine)"
            )
    print()


def naive_figures(figures: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], str | None]:
    """The JSON figures of none and the naive strategies, and which naive one is "naive"."""
    out: dict[str, Any] = {}
    for name in ("none", *NAIVE):
        if name in figures:
            f, key = figures[name], name.replace("-", "_")
            out[f"{key}_prefill_tokens"] = f["prefill_tokens"]
            out[f"{key}_completed"] = f["completed"]
            out[f"{key}_items"] = f["items"]
    done = [n for n in NAIVE if n in figures and figures[n]["completed"]]
    naive = min(done, key=lambda n: figures[n]["prefill_tokens"]) if done else None
    if naive is not None:
        f = figures[naive]
        out["naive"] = naive
        out["naive_prefill_tokens"] = f["prefill_tokens"]
        out["naive_prefill_vs_floor"] = f["prefill_tokens"] / f["prefill_floor"]
        out["naive_max_prompt_tokens"] = f["max_prompt"]
        out["naive_cached_fraction"] = f["cached_fraction"]
    return out, naive


def check_targets(figures: dict[str, dict[str, Any]], window: int) -> dict[str, Any]:
    """Print ours against the targets and their arithmetic bounds; return the JSON figures."""
    out, naive = naive_figures(figures)
    ours = figures.get("ours")
    if ours is None:
        return out
    base = figures[naive]["prefill_tokens"] if naive else 0
    ratio = ours["prefill_tokens"] / base if base else None
    floor = ours["prefill_floor"] / base if base else None
    calls, results = max(1, ours["agent_calls"]), ours["result_tokens"]
    bound = 1.0 - results / (calls * window)
    out |= {
        "max_prompt_tokens": ours["max_prompt"],
        "prefill_ratio_vs_naive": ratio,
        "prefill_ratio_floor": floor,
        "cached_fraction": ours["cached_fraction"],
        "cached_fraction_bound": bound,
        "ours_completed": ours["completed"],
        "ours_prompt_tokens": ours["prompt_tokens"],
        "ours_prefill_tokens": ours["prefill_tokens"],
        "ours_prefill_vs_floor": ours["prefill_tokens"] / ours["prefill_floor"],
        "ours_summary_prefill_tokens": ours["summary_prefill_tokens"],
        "ours_gc_steps": ours["gc_steps"],
        "ours_compactions": ours["compactions"],
    }
    cached = ours["cached_fraction"]
    rows = [
        ["max prompt tokens (ours)", f"{ours['max_prompt']:,}", f"<= {window:,}", "-"],
        [f"prefill ours / {naive}", _fmt(ratio), f"<= {PREFILL_RATIO_TARGET}", _fmt(floor)],
        ["cached fraction (ours)", f"{cached:.3f}", f">= {CACHED_FRACTION_TARGET}", _fmt(bound)],
    ]
    met = [
        ours["completed"] and ours["max_prompt"] <= window,
        ratio is not None and ratio <= PREFILL_RATIO_TARGET,
        cached >= CACHED_FRACTION_TARGET,
    ]
    rows = [[*row, "PASS" if ok else "MISS"] for row, ok in zip(rows, met, strict=True)]
    print_table(["check", "value", "target", "best possible", "status"], rows, title="Targets:")
    print(
        f"best possible: each call computes its new tool result ({results:,} tokens in all, new\n"
        f"to the engine) and the first prompt is computed once: prefill >= "
        f"{ours['prefill_floor']:,}\n(ours computes {out['ours_prefill_vs_floor']:.3f} x that); "
        f"{calls} agent calls of at most {window:,} tokens\ngive cached / prompt <= "
        f"1 - {results:,} / ({calls} x {window:,}) = {bound:.3f}"
    )
    print()
    out["targets_met"] = all(met)
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def run_bench(
    iterations: int = ITERATIONS,
    repeats: int = REPEATS,
    strategies: Sequence[str] = STRATEGIES,
    *,
    seed: int = 13,
    setup: Setup | None = None,
) -> dict[str, Any]:
    """Run every strategy ``repeats`` times (alternating), print the report, return the JSON."""
    import anyio

    setup = setup or Setup()
    workload = Workload.build(iterations, seed)
    by_strategy: dict[str, list[Trial]] = {s: [] for s in strategies}

    async def trials() -> None:  # one event loop for all: litellm keeps per-loop state
        for _ in range(repeats):
            for strategy in strategies:  # strategies alternate inside each repeat
                trial = await run_trial(strategy, workload, setup)
                by_strategy[strategy].append(trial)

    anyio.run(trials)
    figures = {name: medians(trials) for name, trials in by_strategy.items()}
    print_strategies(figures)
    flat = check_targets(figures, setup.window)
    head = {"iterations": iterations, "repeats": repeats, "window": setup.window}
    head |= {"headroom": setup.headroom, "threshold": setup.threshold}
    return {**head, **flat, **figures}


def main() -> None:
    """Parse the options, run, print the JSON last."""
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(repeats=None)
    parser.add_argument("--iterations", type=int, default=None, help=f"tool results ({ITERATIONS})")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated")
    parser.add_argument("--seed", type=int, default=13, help="seed of the tool-result sizes")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="ours / naive-summarise")
    parser.add_argument("--window", type=int, default=WINDOW, help="the engine's context limit")
    args = parser.parse_args()
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = set(strategies) - set(STRATEGIES)
    if unknown:
        parser.error(f"unknown strategies: {', '.join(sorted(unknown))}")
    iterations = args.iterations or (30 if args.quick else ITERATIONS)
    repeats = args.repeats or (1 if args.quick else REPEATS)
    import adk  # noqa: F401 - for adk_location

    print(
        f"context: a {iterations}-result tool loop in a {args.window:,}-token window (the engine's "
        f"limit), tool results of 1,000-4,000 tokens; {repeats} repeat(s) per strategy"
    )
    print(f"adk measured: {adk_location()}")
    print()
    started = time.perf_counter()
    setup = Setup(window=args.window, threshold=args.threshold)
    figures = run_bench(iterations, repeats, strategies, seed=args.seed, setup=setup)
    print(f"total wall: {time.perf_counter() - started:.1f} s")
    print()
    emit_json(figures)


if __name__ == "__main__":
    main()
