"""Framework overhead of one agent turn, and the cost of ``import adk``.

One turn = 2 model calls + 1 tool call, with a scripted model and no latency,
so everything measured is framework work. The same turn is written by hand
with plain asyncio and dicts (the baseline), in the same process and the same
run; the figure that matters is the ratio.

    python bench/overhead.py            # full run (21 repeats of 200 adk turns, 15 imports)
    python bench/overhead.py --quick    # smoke test
    python bench/overhead.py --profile  # also cProfile the adk side (report on stderr)

The two sides are timed in short, interleaved blocks of equal wall time (a
block of adk turns, then as many baseline turns as take as long): on a busy
machine a block is sometimes descheduled, and a long block is hit more often
than a short one, which would charge the scheduler to the slower side.

Targets: ratio <= 10, ``import adk`` <= 150 ms. The last stdout line is a
JSON object: adk_us, baseline_us, ratio, import_ms, import_full_ms,
python_startup_ms.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (
    BASELINE_TOOL_SPECS,
    BASELINE_TOOLS,
    add,
    adk_location,
    base_parser,
    emit_json,
    print_table,
    profile_async,
    python_code_wall_ms,
    ratio,
    spread,
    time_async_runs,
    verdict,
)

QUESTION = "What is 1 + 2?"
ANSWER = "The answer is 3."
CALL_ID = "call_0001"
ARGUMENTS = '{"a": 1, "b": 2}'

RATIO_TARGET = 10.0
IMPORT_TARGET_MS = 150.0

IMPORT_SNIPPETS = {
    "python_startup": "pass",
    "import": "import adk",
    "import_full": "from adk import Runner, ChatModelAgent, ScriptedModel, tool",
}


# --------------------------------------------------------------------------- the tool


# --------------------------------------------------------------------------- baseline
# The same turn by hand: dict messages, an async "model" that returns a tool
# call then text, json.loads of the arguments, an awaited tool, a tool-result
# message, the final text. No pydantic, no framework.


async def baseline_model(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]]
) -> dict[str, Any]:
    """First call: ask for the tool; once a tool result is there: answer."""
    if messages[-1]["role"] == "tool":
        return {"role": "assistant", "content": ANSWER}
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"id": CALL_ID, "name": "add", "arguments": ARGUMENTS}],
    }


async def baseline_turn(question: str, max_iterations: int = 20) -> str:
    messages: list[dict[str, Any]] = [{"role": "user", "content": question}]
    for _ in range(max_iterations):
        reply = await baseline_model(messages, BASELINE_TOOL_SPECS)
        messages.append(reply)
        calls = reply.get("tool_calls")
        if not calls:
            return str(reply["content"])
        for call in calls:
            fn = BASELINE_TOOLS[call["name"]]
            arguments = json.loads(call["arguments"])
            result = await fn(**arguments)
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call["id"],
                    "name": call["name"],
                    "content": json.dumps(result),
                }
            )
    raise RuntimeError("no final answer")


# --------------------------------------------------------------------------- adk side


def build_adk_case(**runner_options: Any) -> Any:
    """The adk runner and a zero-argument coroutine function doing one turn.

    ``runner_options`` go to the Runner (bench/tracing.py times the same turn traced).
    """
    from adk import ChatModelAgent, Runner, ScriptedModel, ToolCall

    def script(request: Any) -> Any:
        if request.messages[-1].role == "tool":
            return ANSWER
        return ToolCall(id=CALL_ID, name="add", arguments=ARGUMENTS)

    model = ScriptedModel(script)
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[add]), **runner_options)
    requests = model.requests

    async def adk_once() -> str:
        # ScriptedModel records every request; clearing keeps memory (and GC
        # work) flat over thousands of runs, as a real model would.
        requests.clear()
        result = await runner.invoke(QUESTION)
        return result.text

    return adk_once


async def baseline_once() -> str:
    return await baseline_turn(QUESTION)


# --------------------------------------------------------------------------- timing


async def balanced_blocks(
    cases: dict[str, Callable[[], Awaitable[Any]]],
    *,
    runs: int,
    repeats: int,
    warmup: int,
) -> dict[str, list[float]]:
    """µs per run of each case, one figure per repeat, from blocks of equal wall time.

    The first case runs ``runs`` times per block; every other case runs as
    many times as fill the same time (calibrated after the warm-up). Cases
    alternate inside every repeat, after a ``gc.collect()``, as in
    ``_common.interleaved_async``.
    """
    for fn in cases.values():
        for _ in range(warmup):
            await fn()
    per_run = {name: await time_async_runs(fn, max(runs, 20)) for name, fn in cases.items()}
    block_us = runs * next(iter(per_run.values()))
    counts = {name: max(1, round(block_us / us)) for name, us in per_run.items()}
    results: dict[str, list[float]] = {name: [] for name in cases}
    perf = time.perf_counter_ns
    for _ in range(repeats):
        for name, fn in cases.items():
            count = counts[name]
            gc.collect()
            start = perf()
            for _ in range(count):
                await fn()
            results[name].append((perf() - start) / count / 1000.0)
    return results


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument(
        "--runs",
        type=int,
        default=200,
        help="adk turns per timed block (the baseline's block lasts as long)",
    )
    parser.add_argument("--warmup", type=int, default=200, help="untimed turns per side first")
    parser.add_argument("--import-repeats", type=int, default=15, help="timed interpreter starts")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the adk side; report on stderr"
    )
    parser.set_defaults(repeats=21)
    args = parser.parse_args()
    if args.quick:
        args.runs, args.repeats, args.warmup, args.import_repeats = 100, 7, 50, 5

    adk_once = build_adk_case()

    async def measure() -> dict[str, list[float]]:
        adk_text, base_text = await adk_once(), await baseline_once()
        if adk_text != ANSWER or base_text != ANSWER:
            raise SystemExit(f"sides disagree: adk={adk_text!r} baseline={base_text!r}")
        return await balanced_blocks(
            {"adk": adk_once, "baseline": baseline_once},
            runs=args.runs,
            repeats=args.repeats,
            warmup=args.warmup,
        )

    turns = asyncio.run(measure())
    imports = python_code_wall_ms(IMPORT_SNIPPETS, repeats=args.import_repeats, warmup=2)

    adk_us, adk_min, adk_max = spread(turns["adk"])
    base_us, base_min, base_max = spread(turns["baseline"])
    paired = [ratio(a, b) for a, b in zip(turns["adk"], turns["baseline"], strict=True)]
    overhead_ratio = ratio(adk_us, base_us)
    start_ms, start_min, start_max = spread(imports["python_startup"])
    import_ms, import_min, import_max = spread(imports["import"])
    full_ms, full_min, full_max = spread(imports["import_full"])

    print(
        f"overhead: one turn = 2 model calls + 1 tool call (scripted, no latency); "
        f"{args.repeats} repeats x {args.runs} adk turns (baseline blocks of equal time) "
        f"after {args.warmup} warm-up turns; "
        f"imports: {args.import_repeats} starts of {sys.executable}"
    )
    print(f"adk measured: {adk_location()}")
    print()
    print_table(
        ["figure", "median", "min", "max", "target", "status"],
        [
            ["adk turn (µs/run)", adk_us, adk_min, adk_max, "", ""],
            ["baseline turn (µs/run)", base_us, base_min, base_max, "", ""],
            [
                "ratio adk/baseline",
                overhead_ratio,
                min(paired),
                max(paired),
                f"<= {RATIO_TARGET:g}",
                verdict(overhead_ratio, RATIO_TARGET),
            ],
            ["python -c 'pass' (ms)", start_ms, start_min, start_max, "", ""],
            [
                "python -c 'import adk' (ms)",
                import_ms,
                import_min,
                import_max,
                f"<= {IMPORT_TARGET_MS:g}",
                verdict(import_ms, IMPORT_TARGET_MS),
            ],
            ["  minus startup (ms)", import_ms - start_ms, "", "", "", ""],
            ["python -c 'from adk import Runner, ...' (ms)", full_ms, full_min, full_max, "", ""],
            ["  minus startup (ms)", full_ms - start_ms, "", "", "", ""],
        ],
    )

    if args.profile:
        report = profile_async(adk_once, runs=max(args.runs, 200), warmup=args.warmup)
        print(
            "cProfile of the adk side (per turn; cProfile inflates absolute times):",
            file=sys.stderr,
        )
        print(report, file=sys.stderr)

    emit_json(
        {
            "adk_us": adk_us,
            "baseline_us": base_us,
            "ratio": overhead_ratio,
            "import_ms": import_ms,
            "import_full_ms": full_ms,
            "python_startup_ms": start_ms,
        }
    )


if __name__ == "__main__":
    main()
